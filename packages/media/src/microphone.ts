/**
 * Browser microphone PCM for live turns: an AudioWorklet taps the track on the audio thread
 * (ScriptProcessorNode is deprecated and runs on the main thread), posts mono chunks of about
 * 40 ms, and they are resampled here to the feature rate with `Resampler`. The worklet's
 * source is inlined and loaded from a Blob URL, so bundlers need no extra asset.
 *
 * Audio is never dropped: chunks wait in a queue until read, so a reader that falls behind
 * holds memory rather than losing speech (the live pipeline reads continuously and keeps
 * its slow stages behind their own bounded queues).
 */
import { OmniError } from '@omniweb/core';
import { Resampler } from './resample.js';

export interface MicrophoneOptions {
  /** Output rate (default 16 kHz, the feature rate). */
  sampleRate?: number;
  /** An AudioContext to run in (default: a new one, closed when the iteration ends). */
  context?: AudioContext;
  /** Ends the iteration (without an error) and releases the audio graph. */
  signal?: AbortSignal;
}

const PROCESSOR = 'omniweb-pcm-tap';
/** Samples per posted chunk at the context rate: 2048 at 48 kHz is ~43 ms. */
const POST_SAMPLES = 2048;

/** Runs on the audio thread: channels averaged to mono, posted in chunks of POST_SAMPLES (transferred). */
const WORKLET_SOURCE = `
class PcmTap extends AudioWorkletProcessor {
  constructor() {
    super();
    this.buffer = new Float32Array(${POST_SAMPLES});
    this.filled = 0;
    this.running = true;
    this.port.onmessage = () => { this.running = false; };
  }
  process(inputs) {
    const channels = inputs[0];
    if (channels && channels.length > 0) {
      const n = channels[0].length;
      for (let i = 0; i < n; i++) {
        let sum = 0;
        for (let c = 0; c < channels.length; c++) sum += channels[c][i];
        this.buffer[this.filled++] = sum / channels.length;
        if (this.filled === this.buffer.length) {
          this.port.postMessage(this.buffer, [this.buffer.buffer]);
          this.buffer = new Float32Array(${POST_SAMPLES});
          this.filled = 0;
        }
      }
    }
    return this.running;
  }
}
registerProcessor('${PROCESSOR}', PcmTap);
`;

/** Contexts whose worklet module is loaded already (addModule once per context). */
const loaded = new WeakSet<BaseAudioContext>();

async function loadTap(context: AudioContext): Promise<void> {
  if (loaded.has(context)) return;
  const url = URL.createObjectURL(new Blob([WORKLET_SOURCE], { type: 'text/javascript' }));
  try {
    await context.audioWorklet.addModule(url);
  } finally {
    URL.revokeObjectURL(url);
  }
  loaded.add(context);
}

/**
 * Mono PCM of a MediaStream's audio at `sampleRate` (default 16 kHz), in chunks as captured,
 * until the track ends or `signal` aborts (browser only).
 */
export async function* microphonePcm(stream: MediaStream, options: MicrophoneOptions = {}): AsyncGenerator<Float32Array, void, undefined> {
  if (typeof MediaStream === 'undefined' || !(stream instanceof MediaStream)) {
    throw new OmniError('BAD_INPUT', 'microphonePcm takes a MediaStream (browser only); in Node pass PCM chunks instead');
  }
  const track = stream.getAudioTracks()[0];
  if (!track) throw new OmniError('BAD_INPUT', 'microphonePcm: the MediaStream has no audio track');
  if (typeof AudioWorkletNode === 'undefined') throw new OmniError('BAD_INPUT', 'microphonePcm: this browser has no AudioWorklet');
  const rate = options.sampleRate ?? 16_000;
  if (!Number.isInteger(rate) || rate < 1000) throw new OmniError('BAD_INPUT', `microphonePcm: sampleRate must be an integer number of Hz ≥ 1000, got ${String(options.sampleRate)}`);
  const context = options.context ?? new AudioContext();
  const owned = options.context === undefined;
  const queue: Float32Array[] = [];
  let ended = false;
  let wake: (() => void) | null = null;
  const notify = () => { const w = wake; wake = null; w?.(); };
  const end = () => { ended = true; notify(); };
  track.addEventListener('ended', end);
  options.signal?.addEventListener('abort', end);
  let source: MediaStreamAudioSourceNode | null = null;
  let tap: AudioWorkletNode | null = null;
  try {
    const resampler = new Resampler(context.sampleRate, rate);
    await loadTap(context);
    source = context.createMediaStreamSource(stream);
    tap = new AudioWorkletNode(context, PROCESSOR, { numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1] });
    tap.port.onmessage = (event: MessageEvent<Float32Array>) => { queue.push(event.data); notify(); };
    source.connect(tap);
    // The tap writes nothing, so its output is silence; connected, the graph keeps pulling it.
    tap.connect(context.destination);
    if (context.state === 'suspended') await context.resume();
    while (!ended || queue.length > 0) {
      const chunk = queue.shift();
      if (chunk === undefined) {
        if (options.signal?.aborted || track.readyState === 'ended') break;
        await new Promise<void>((resolve) => { wake = resolve; });
        continue;
      }
      const out = resampler.push(chunk);
      if (out.length > 0) yield out;
    }
    const tail = resampler.flush();
    if (tail.length > 0) yield tail;
  } finally {
    track.removeEventListener('ended', end);
    options.signal?.removeEventListener('abort', end);
    if (tap) {
      tap.port.postMessage('stop');
      tap.port.onmessage = null;
      tap.disconnect();
    }
    source?.disconnect();
    if (owned) await context.close();
  }
}
