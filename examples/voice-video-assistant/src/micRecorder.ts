/**
 * Push-to-talk capture: between `start()` and `stop()` the microphone's PCM (media's
 * `microphonePcm`, resampled to the model's 16 kHz) is kept, and `stop()` returns it as one clip.
 */
import { microphonePcm } from '@omniweb/media';
import type { AudioSamples } from '@omniweb/sdk';

/** The audio encoder's feature rate: the clip needs no resampling in the SDK. */
const CLIP_SAMPLE_RATE = 16_000;

export class MicRecorder {
  readonly #stream: MediaStream;
  /** One context for every turn (made on the first press, which lets it start without a prompt). */
  #context: AudioContext | null = null;
  #abort: AbortController | null = null;
  #chunks: Float32Array[] = [];
  #reading: Promise<void> = Promise.resolve();

  constructor(stream: MediaStream) {
    this.#stream = stream;
  }

  get recording(): boolean {
    return this.#abort !== null;
  }

  start(): void {
    const abort = new AbortController();
    const chunks: Float32Array[] = [];
    this.#context ??= new AudioContext();
    this.#abort = abort;
    this.#chunks = chunks;
    this.#reading = (async () => {
      for await (const chunk of microphonePcm(this.#stream, { context: this.#context!, sampleRate: CLIP_SAMPLE_RATE, signal: abort.signal })) {
        chunks.push(chunk);
      }
    })();
  }

  /** The clip since `start()`, up to this moment. */
  async stop(): Promise<AudioSamples> {
    this.#abort?.abort();
    this.#abort = null;
    await this.#reading;
    const samples = new Float32Array(this.#chunks.reduce((n, c) => n + c.length, 0));
    let offset = 0;
    for (const chunk of this.#chunks) {
      samples.set(chunk, offset);
      offset += chunk.length;
    }
    return { samples, sampleRate: CLIP_SAMPLE_RATE };
  }
}
