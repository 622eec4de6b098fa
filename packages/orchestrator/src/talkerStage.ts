/** The Talker stage on a backend: one `TalkerStream` per spoken reply. */
import type { Talker, TalkerStream } from '@omniweb/talker';
import { proxy } from 'comlink';
import type { TalkerReply, TalkerStage, TalkerStart } from './stages.js';

export class LocalTalker implements TalkerStage {
  constructor(readonly talker: Talker) {}

  async start(request: TalkerStart): Promise<TalkerReply> {
    const stream = this.talker.start(
      { ...request.prompt, thinkerHidden: request.hidden, thinkerEmbeddings: request.embeddings },
      { speaker: request.speaker, sampling: request.sampling, maxNewTokens: request.maxNewTokens },
    );
    return proxy(new LocalTalkerReply(stream));
  }
}

class LocalTalkerReply implements TalkerReply {
  readonly #stream: TalkerStream;
  readonly #stop = new AbortController();
  /** Started by the first `next()`: the Talker waits for its first reply token there. */
  #codes: AsyncGenerator<number, void, undefined> | null = null;

  constructor(stream: TalkerStream) {
    this.#stream = stream;
  }

  async push(hidden: Float32Array, embedding: Float32Array): Promise<void> {
    this.#stream.push({ hidden, embedding });
  }

  async endOfText(): Promise<void> {
    this.#stream.endOfText();
  }

  async next(): Promise<number | null> {
    this.#codes ??= this.#stream.codes({ signal: this.#stop.signal });
    const step = await this.#codes.next();
    return step.done ? null : step.value;
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    this.#stream.dispose();
    // Ends an iteration parked at a code, so the stream frees its buffers now.
    await this.#codes?.return().catch(() => undefined);
  }
}
