/** The Thinker stage on a backend: one `ThinkerSession` per conversation over shared weights. */
import { OmniError, type Tensor } from '@omniweb/core';
import { ThinkerSession, type CachePolicy, type MediaEmbeddings, type SessionMark, type Thinker, type TokenEvent } from '@omniweb/thinker';
import { proxy } from 'comlink';
import type { MediaRowSet, PrefillChunk, PrefillRows, ReplyOptions, ReplyToken, ThinkerConversation, ThinkerStage } from './stages.js';
import type { ConversationState } from './prompt.js';
import { handOver, owned } from './transfer.js';

export class LocalThinker implements ThinkerStage {
  constructor(readonly thinker: Thinker) {}

  async open(options: { cache?: CachePolicy }): Promise<ThinkerConversation> {
    return proxy(new LocalThinkerConversation(this.thinker, options.cache));
  }
}

class LocalThinkerConversation implements ThinkerConversation {
  readonly #thinker: Thinker;
  readonly #session: ThinkerSession;
  /** Fires to cut the running prefill or reply; a fresh one per call that can be cut. */
  #abort = new AbortController();
  #reply: AsyncGenerator<TokenEvent, void, undefined> | null = null;
  #turnMark: SessionMark | null = null;

  constructor(thinker: Thinker, cache: CachePolicy | undefined) {
    this.#thinker = thinker;
    this.#session = new ThinkerSession(thinker, cache ? { cache } : {});
  }

  async state(): Promise<ConversationState> {
    const s = this.#session;
    return { length: s.length, nextPosition: s.nextPosition, pending: s.pending };
  }

  async prefill(chunk: PrefillChunk): Promise<PrefillRows> {
    this.#abort = new AbortController();
    const backend = this.#thinker.backend;
    const { media, tensors } = this.#upload(chunk.media);
    try {
      const result = await this.#session.prefill(
        { ids: chunk.ids, media, positions: chunk.positions },
        { hidden: chunk.rows, embeddings: chunk.rows, signal: this.#abort.signal },
      );
      const rows: PrefillRows = { rows: result.rows };
      if (result.hidden) rows.hidden = owned(result.hidden);
      if (result.embeddings) rows.embeddings = owned(result.embeddings);
      return handOver(rows, [rows.hidden, rows.embeddings]);
    } finally {
      for (const tensor of tensors) backend.dispose(tensor);
    }
  }

  async startReply(options: ReplyOptions): Promise<void> {
    if (this.#reply) throw new OmniError('BAD_INPUT', 'a reply is already running in this conversation; stop it first');
    this.#abort = new AbortController();
    this.#reply = this.#session.generate({
      maxNewTokens: options.maxNewTokens, sampling: options.sampling, signal: this.#abort.signal,
      hidden: options.rows, embedding: options.rows,
    });
  }

  async next(): Promise<ReplyToken | null> {
    if (!this.#reply) throw new OmniError('BAD_INPUT', 'no reply is running; call startReply first');
    let step: IteratorResult<TokenEvent, void>;
    try {
      step = await this.#reply.next();
    } catch (e) {
      this.#reply = null;
      throw e;
    }
    if (step.done) {
      this.#reply = null;
      return null;
    }
    const { id, hidden, embedding } = step.value;
    const token: ReplyToken = { id };
    if (hidden) token.hidden = owned(hidden);
    if (embedding) token.embedding = owned(embedding);
    return handOver(token, [token.hidden, token.embedding]);
  }

  async stopReply(): Promise<void> {
    const reply = this.#reply;
    this.#reply = null;
    await reply?.return();
  }

  async abort(): Promise<void> {
    this.#abort.abort();
  }

  async markTurn(): Promise<void> {
    this.#turnMark = await this.#session.mark();
  }

  async rewindTurn(): Promise<boolean> {
    const mark = this.#turnMark;
    this.#turnMark = null;
    if (!mark) return false;
    await this.stopReply();
    return this.#session.rewind(mark);
  }

  async close(): Promise<void> {
    await this.stopReply();
    this.#session.dispose();
  }

  /** The encoder rows as device tensors [rows, hidden] for the prefill's merge. */
  #upload(rows: MediaRowSet): { media: MediaEmbeddings; tensors: Tensor[] } {
    const backend = this.#thinker.backend;
    const media: MediaEmbeddings = {};
    const tensors: Tensor[] = [];
    for (const kind of ['audio', 'image', 'video'] as const) {
      const r = rows[kind];
      if (!r) continue;
      const tensor = backend.tensor(r.data, [r.rows, r.data.length / r.rows]);
      tensors.push(tensor);
      media[kind] = tensor;
    }
    return { media, tensors };
  }
}
