/**
 * The reply's voice: 24 kHz PCM chunks queued on an AudioWorklet (worklets/pcmPlayer.ts) in
 * a context running at the model's rate, so chunks play back to back without resampling.
 */
import { OmniError } from '@omniweb/core';

export interface PlaybackProgress {
  /** Samples played since the player was made. */
  samples: number;
  /** Largest |sample| played so far. */
  peak: number;
  /** False once the queue has run dry or was stopped. */
  playing: boolean;
}

export class PcmPlayer {
  readonly sampleRate: number;
  readonly #context: AudioContext;
  readonly #node: AudioWorkletNode;
  #progress: PlaybackProgress = { samples: 0, peak: 0, playing: false };
  #samplesQueued = 0;
  /** Callers of `stop()` waiting for the worklet's answer. */
  #stopped: ((samples: number) => void)[] = [];

  private constructor(context: AudioContext, node: AudioWorkletNode, onProgress: (p: PlaybackProgress) => void) {
    this.#context = context;
    this.#node = node;
    this.sampleRate = context.sampleRate;
    node.port.onmessage = ({ data }: MessageEvent<PlaybackProgress & { type: 'played' | 'stopped' }>) => {
      this.#progress = { samples: data.samples, peak: data.peak, playing: data.playing };
      if (data.type === 'stopped') this.#stopped.shift()?.(data.samples);
      onProgress(this.#progress);
    };
  }

  static async create(sampleRate: number, onProgress: (p: PlaybackProgress) => void): Promise<PcmPlayer> {
    const context = new AudioContext({ sampleRate, latencyHint: 'interactive' });
    await context.audioWorklet.addModule(new URL('./worklets/pcmPlayer.js', import.meta.url));
    const node = new AudioWorkletNode(context, 'omni-pcm-player', { numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1] });
    node.connect(context.destination);
    return new PcmPlayer(context, node, onProgress);
  }

  get progress(): PlaybackProgress {
    return this.#progress;
  }

  /** Samples handed to the player so far (played, queued or dropped by `stop`). */
  get samplesQueued(): number {
    return this.#samplesQueued;
  }

  enqueue(pcm: Float32Array, sampleRate: number): void {
    if (sampleRate !== this.sampleRate) {
      throw new OmniError('BAD_INPUT', `the player runs at ${this.sampleRate} Hz and was given ${sampleRate} Hz audio`);
    }
    // Browsers start a context suspended until a gesture; the talk button is one.
    if (this.#context.state === 'suspended') void this.#context.resume();
    this.#samplesQueued += pcm.length;
    const copy = pcm.slice();
    this.#node.port.postMessage({ type: 'chunk', pcm: copy }, [copy.buffer]);
  }

  /**
   * Drops everything not yet played; the worklet obeys before its next 128-sample quantum.
   * Resolves with the samples played until then (the count since the player was made).
   */
  stop(): Promise<number> {
    this.#node.port.postMessage({ type: 'stop' });
    return new Promise((resolve) => this.#stopped.push(resolve));
  }

  async resume(): Promise<void> {
    if (this.#context.state === 'suspended') await this.#context.resume();
  }
}
