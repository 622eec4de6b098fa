/** The speech stage on a backend: token2wav's streaming decode, fed one code at a time. */
import { OmniError, type Speaker } from '@omniweb/core';
import type { Token2Wav } from '@omniweb/vocoder';
import { proxy } from 'comlink';
import type { SpeechReply, SpeechStage, SpeechSynthesis } from './stages.js';
import { handOver, owned } from './transfer.js';

export class LocalSpeech implements SpeechStage {
  constructor(readonly token2wav: Token2Wav) {}

  async start(voice: Pick<Speaker, 'cond' | 'refMel'>, synthesis: SpeechSynthesis): Promise<SpeechReply> {
    return proxy(new LocalSpeechReply(this.token2wav, voice, synthesis));
  }
}

class LocalSpeechReply implements SpeechReply {
  readonly #pcm: AsyncGenerator<Float32Array, void, undefined>;
  readonly #codes: number[] = [];
  #ended = false;
  #stopped = false;
  #wake: (() => void) | null = null;

  constructor(token2wav: Token2Wav, voice: Pick<Speaker, 'cond' | 'refMel'>, synthesis: SpeechSynthesis) {
    this.#pcm = token2wav.stream(this.#source(), voice, synthesis);
  }

  async push(code: number): Promise<void> {
    if (this.#ended) throw new OmniError('BAD_INPUT', 'push after end: the codes are complete');
    this.#codes.push(code);
    this.#wakeUp();
  }

  async end(): Promise<void> {
    this.#ended = true;
    this.#wakeUp();
  }

  async next(): Promise<Float32Array | null> {
    const step = await this.#pcm.next();
    if (step.done) return null;
    const pcm = owned(step.value);
    return handOver(pcm, [pcm]);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wakeUp();
    // Runs the stream's cleanup (its device buffers); a `next()` in flight ends with ABORTED first.
    await this.#pcm.return().catch(() => undefined);
  }

  /** Codes one by one as pushed, the way the in-thread Talker hands them over: the chunk seams stay the same. */
  async *#source(): AsyncGenerator<number, void, undefined> {
    for (;;) {
      if (this.#stopped) throw new OmniError('ABORTED', 'speech synthesis was stopped');
      const code = this.#codes.shift();
      if (code !== undefined) yield code;
      else if (this.#ended) return;
      else await new Promise<void>((resolve) => { this.#wake = resolve; });
    }
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}
