/**
 * Plays queued mono PCM chunks at the context's rate (the page makes a 24 kHz context, the
 * rate the model speaks at, so no resampling happens here). `stop` drops everything queued
 * at the next render quantum, which is what makes a barge-in cut the voice at once.
 *
 * In:  { type: 'chunk', pcm: Float32Array } | { type: 'stop' }
 * Out: { type: 'played' | 'stopped', samples, peak, playing } — samples played since the node
 *      was made and the largest |sample| among them; 'played' every few quanta while playing
 *      and when the queue runs dry, 'stopped' once for each stop.
 */
export {};

/** ~43 ms at 24 kHz between reports: fine enough for a progress readout, few messages. */
const QUANTA_PER_REPORT = 8;

class PcmPlayerProcessor extends AudioWorkletProcessor {
  readonly #queue: Float32Array[] = [];
  /** Read position in #queue[0]. */
  #offset = 0;
  #samplesPlayed = 0;
  #peak = 0;
  #quantaSinceReport = 0;

  constructor() {
    super();
    this.port.onmessage = ({ data }: MessageEvent<{ type: 'chunk'; pcm: Float32Array } | { type: 'stop' }>) => {
      if (data.type === 'chunk') {
        if (data.pcm.length > 0) this.#queue.push(data.pcm);
      } else if (data.type === 'stop') {
        this.#queue.length = 0;
        this.#offset = 0;
        this.#report('stopped', false);
      }
    };
  }

  process(_inputs: Float32Array[][], outputs: Float32Array[][]): boolean {
    const out = outputs[0][0];
    const wasPlaying = this.#queue.length > 0;
    let written = 0;
    while (written < out.length && this.#queue.length > 0) {
      const chunk = this.#queue[0];
      const n = Math.min(out.length - written, chunk.length - this.#offset);
      for (let i = 0; i < n; i++) {
        const x = chunk[this.#offset + i];
        out[written + i] = x;
        const magnitude = Math.abs(x);
        if (magnitude > this.#peak) this.#peak = magnitude;
      }
      written += n;
      this.#offset += n;
      if (this.#offset === chunk.length) {
        this.#queue.shift();
        this.#offset = 0;
      }
    }
    out.fill(0, written);
    this.#samplesPlayed += written;
    // Other output channels (if the node was given more) carry the same mono signal.
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    if (wasPlaying && this.#queue.length === 0) this.#report('played', false);
    else if (wasPlaying && ++this.#quantaSinceReport >= QUANTA_PER_REPORT) this.#report('played', true);
    return true;
  }

  #report(type: 'played' | 'stopped', playing: boolean): void {
    this.#quantaSinceReport = 0;
    this.port.postMessage({ type, samples: this.#samplesPlayed, peak: this.#peak, playing });
  }
}

registerProcessor('omni-pcm-player', PcmPlayerProcessor);
