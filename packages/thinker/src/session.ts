/**
 * A conversation with the Thinker: its KV cache, run states and token
 * history. Prompt chunks are prefilled as they arrive (audio blocks while the
 * user still speaks); `generate` decodes one token at a time and streams
 * them; the next turn continues from the cache without re-prefilling.
 */
import { nextTask, OmniError, type Tensor } from '@omniweb/core';
import { type CachePolicy, type KVCache } from './kvCache.js';
import { MEDIA_KINDS, type MediaEmbeddings, type MediaKind, type MediaRows, type MediaTokenIds } from './merge.js';
import { Sampler, TokenHistory, type SamplingOptions } from './sampling.js';
import { type RunState, type Thinker, type ThinkerChunk } from './thinker.js';

export interface SessionOptions {
  /** Default: a plain cache of min(4096, max_position_embeddings) rows. */
  cache?: CachePolicy;
  /** Largest prefill pass; longer chunks are split (default 256). */
  maxChunkRows?: number;
}

/** A piece of the prompt: token ids (with media rows for placeholders) or merged embeddings, and positions. */
export interface PromptChunk {
  ids?: Int32Array | readonly number[];
  media?: MediaEmbeddings;
  embeddings?: Tensor | { rows: Tensor; offset: number };
  /**
   * Absolute rotary positions, stream-major [3 · T], from tmrope (fact sheet
   * §5.2). May be omitted for plain text: it then continues at
   * `nextPosition`, one step per token in all three streams.
   */
  positions?: Int32Array;
}

export interface PrefillOptions {
  /** Return the final-norm hidden states [T · hidden] (the Talker's H_k, fact sheet §7.2). */
  hidden?: boolean;
  /** Return the input embeddings [T · hidden] (the Talker's Ê_k). */
  embeddings?: boolean;
  /** Checked between passes (queued tasks run there first); passes already done stay in the cache. */
  signal?: AbortSignal;
}

export interface PrefillResult {
  rows: number;
  hidden?: Float32Array;
  embeddings?: Float32Array;
}

/**
 * One generated token. `hidden` and `embedding` belong to the token fed in the
 * step that produced `id`: the previous event's id, or for the first event
 * the last prompt token. So the Talker gets H(r_j) and E(r_j) with the event of
 * r_{j+1} (fact sheet §7.2), without holding text back by a step.
 */
export interface TokenEvent {
  id: number;
  text?: string;
  hidden?: Float32Array;
  embedding?: Float32Array;
  /** The raw logits row `id` was chosen from. */
  logits?: Float32Array;
}

export interface GenerateOptions {
  maxNewTokens: number;
  sampling?: SamplingOptions;
  /** Default: the config's eos and pad ids (<|im_end|>, <|endoftext|>). The stop token is emitted, never fed. */
  stopIds?: readonly number[];
  signal?: AbortSignal;
  hidden?: boolean;
  embedding?: boolean;
  logits?: boolean;
  /** Text of one id (a streaming detokenizer); fills `text`. */
  detokenize?: (id: number) => string;
}

/**
 * Where a conversation stood (`ThinkerSession.mark`): `rewind` puts the session back there,
 * as if nothing after it had been fed.
 */
export interface SessionMark {
  readonly length: number;
  readonly nextPosition: number;
  readonly pending: number | null;
  readonly historySize: number;
  readonly logits: Float32Array | null;
  /** The last fed token's final hidden state and input embedding [hidden]. */
  readonly hidden: Float32Array;
  readonly embedding: Float32Array;
}

function aborted(what: string): OmniError {
  return new OmniError('ABORTED', `${what} was aborted; the cache holds every token fed before that`);
}

export class ThinkerSession {
  readonly cache: KVCache;
  readonly maxChunkRows: number;
  readonly #thinker: Thinker;
  readonly #decodeState: RunState;
  #prefillState: RunState | null = null;
  readonly #history: TokenHistory;
  /** The last fed token's final hidden state and input embedding [1, hidden]. */
  readonly #lastHidden: Tensor;
  readonly #lastInput: Tensor;
  #lastLogits: Float32Array | null = null;
  readonly #decodeIds = new Int32Array(1);
  readonly #decodePositions = new Int32Array(3);
  #length = 0;
  #nextPosition = 0;
  #pending: number | null = null;
  #busy = false;
  #disposed = false;
  /** Marks this session made: a mark only rewinds the session it came from. */
  readonly #marks = new WeakSet<SessionMark>();

  constructor(thinker: Thinker, options: SessionOptions = {}) {
    this.#thinker = thinker;
    const { hidden, vocab, maxPositions } = thinker.config.text;
    const policy = options.cache ?? { kind: 'plain', capacity: Math.min(4096, maxPositions) };
    const maxChunkRows = options.maxChunkRows ?? 256;
    if (!Number.isSafeInteger(maxChunkRows) || maxChunkRows < 1) throw new OmniError('BAD_INPUT', `maxChunkRows ${maxChunkRows} must be an integer ≥ 1`);
    this.cache = thinker.createCache(policy);
    // A pass must fit beside the sinks: the window bounds it.
    this.maxChunkRows = policy.kind === 'sinkWindow' ? Math.min(maxChunkRows, policy.window) : maxChunkRows;
    this.#decodeState = thinker.createRunState(1);
    this.#history = new TokenHistory(vocab);
    this.#lastHidden = thinker.backend.empty([1, hidden]);
    this.#lastInput = thinker.backend.empty([1, hidden]);
  }

  /** Tokens fed so far (evicted ones included). */
  get length(): number {
    return this.#length;
  }

  /** One past the largest absolute position fed: where text continues (fact sheet §5.2). */
  get nextPosition(): number {
    return this.#nextPosition;
  }

  /** HF `rope_deltas`: a decoded token at length c sits at c + ropeDeltas. */
  get ropeDeltas(): number {
    return this.#nextPosition - this.#length;
  }

  /**
   * The last generated id, emitted but not fed (a stop token, or the last one
   * before maxNewTokens or an abort). `generate` feeds it first; a new
   * prompt chunk should start with it when the reply is to stay in context.
   */
  get pending(): number | null {
    return this.#pending;
  }

  /** Feeds a prompt chunk, in passes of at most maxChunkRows tokens. */
  async prefill(chunk: PromptChunk, options: PrefillOptions = {}): Promise<PrefillResult> {
    this.#enter();
    try {
      const { ids, positions, rows } = this.#normalize(chunk);
      const { hidden } = this.#thinker.config.text;
      const policy = this.cache.policy;
      if (!policy.evicts && this.cache.length + rows > policy.capacity) {
        throw new OmniError('CONTEXT_OVERFLOW', `the prompt chunk of ${rows} tokens does not fit: the cache holds ${this.cache.length} of ${policy.capacity} rows and has no eviction policy`);
      }
      const result: PrefillResult = { rows };
      if (options.hidden) result.hidden = new Float32Array(rows * hidden);
      if (options.embeddings) result.embeddings = new Float32Array(rows * hidden);
      const mediaFor = ids ? planMedia(ids, chunk.media, this.#thinker.config.tokens) : null;
      if (!ids && chunk.media !== undefined) throw new OmniError('BAD_INPUT', 'media rows go with ids; embeddings are already merged');
      // A new prompt abandons an emitted-but-unfed token (see `pending`).
      this.#pending = null;
      for (let first = 0; first < rows; first += this.maxChunkRows) {
        // Between passes, queued tasks run: an abort sent from another thread (a worker's
        // caller) or a UI event lands here, not after the whole prompt.
        if (first > 0) await nextTask();
        if (options.signal?.aborted) throw aborted('prefill');
        const count = Math.min(this.maxChunkRows, rows - first);
        const state = this.#stateFor(count);
        const pass: ThinkerChunk = { positions: slicePositions(positions, rows, first, count) };
        if (ids) {
          pass.ids = ids.subarray(first, first + count);
          pass.media = mediaFor!(pass.ids);
        } else {
          const e = chunk.embeddings!;
          const base = 'rows' in e ? e : { rows: e, offset: 0 };
          pass.embeddings = { rows: base.rows, offset: base.offset + first };
        }
        await this.#feed(state, pass);
        if (ids) this.#history.addAll(pass.ids!);
        if (result.hidden) result.hidden.set(await this.#thinker.readRows(state.hidden, 0, count), first * hidden);
        if (result.embeddings) result.embeddings.set(await this.#thinker.readRows(state.inputs, 0, count), first * hidden);
      }
      return result;
    } finally {
      this.#busy = false;
    }
  }

  /**
   * Streams new tokens. Greedy unless `sampling.temperature` > 0. Stops after
   * a stop id, maxNewTokens, or when `signal` fires (then the iterator throws
   * ABORTED); breaking out of the loop stops it too. Either way the cache
   * stays consistent: it holds every token fed, and `pending` the last one
   * emitted, so the next `generate` or prompt continues from here.
   */
  async *generate(options: GenerateOptions): AsyncGenerator<TokenEvent, void, undefined> {
    const { maxNewTokens, signal } = options ?? ({} as GenerateOptions);
    if (!Number.isSafeInteger(maxNewTokens) || maxNewTokens < 1) throw new OmniError('BAD_INPUT', `maxNewTokens ${maxNewTokens} must be an integer ≥ 1`);
    const { vocab } = this.#thinker.config.text;
    const sampler = new Sampler(vocab, options.sampling);
    const stops = new Set(options.stopIds ?? this.#defaultStops());
    for (const id of stops) if (!(Number.isSafeInteger(id) && id >= 0 && id < vocab)) throw new OmniError('BAD_INPUT', `stop id ${id} is outside the vocabulary [0, ${vocab})`);
    this.#enter();
    try {
      if (this.#pending !== null) {
        if (signal?.aborted) throw aborted('generation');
        await this.#decode(this.#pending);
      }
      if (!this.#lastLogits) throw new OmniError('BAD_INPUT', 'nothing to continue from: prefill a prompt first');
      for (let n = 0; n < maxNewTokens; n++) {
        if (signal?.aborted) throw aborted('generation');
        const logits = this.#lastLogits;
        const id = sampler.pick(logits, this.#history);
        const event: TokenEvent = { id };
        if (options.detokenize) event.text = options.detokenize(id);
        if (options.hidden) event.hidden = await this.#thinker.readRows(this.#lastHidden, 0, 1);
        if (options.embedding) event.embedding = await this.#thinker.readRows(this.#lastInput, 0, 1);
        if (options.logits) event.logits = logits;
        this.#history.add(id);
        this.#pending = id;
        yield event;
        if (stops.has(id) || n === maxNewTokens - 1) return;
        if (signal?.aborted) throw aborted('generation');
        await this.#decode(id);
      }
    } finally {
      this.#busy = false;
    }
  }

  /** Where the conversation stands now, for `rewind`. */
  async mark(): Promise<SessionMark> {
    this.#enter();
    try {
      const mark: SessionMark = {
        length: this.#length, nextPosition: this.#nextPosition, pending: this.#pending,
        historySize: this.#history.ids.length, logits: this.#lastLogits,
        hidden: await this.#thinker.readRows(this.#lastHidden, 0, 1),
        embedding: await this.#thinker.readRows(this.#lastInput, 0, 1),
      };
      this.#marks.add(mark);
      return mark;
    } finally {
      this.#busy = false;
    }
  }

  /**
   * Forgets everything fed since `mark` (a withdrawn or failed turn), so the next prompt
   * continues from there. Returns false and changes nothing when part of it was evicted
   * already (a sinkWindow cache smaller than what came after the mark).
   */
  async rewind(mark: SessionMark): Promise<boolean> {
    if (!this.#marks.has(mark)) throw new OmniError('BAD_INPUT', 'rewind takes a mark made by this session\'s mark()');
    this.#enter();
    try {
      if (mark.length > this.#length || !this.cache.rewind(mark.length)) return false;
      this.#length = mark.length;
      this.#nextPosition = mark.nextPosition;
      this.#pending = mark.pending;
      this.#history.truncate(mark.historySize);
      this.#lastLogits = mark.logits;
      const b = this.#thinker.backend;
      const hidden = this.#thinker.config.text.hidden;
      const saved = [b.tensor(mark.hidden, [1, hidden]), b.tensor(mark.embedding, [1, hidden])];
      b.copy(saved[0], this.#lastHidden, 0, 0, hidden);
      b.copy(saved[1], this.#lastInput, 0, 0, hidden);
      // The uploads must outlive the queued copies that read them.
      await b.sync();
      for (const t of saved) b.dispose(t);
      return true;
    } finally {
      this.#busy = false;
    }
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.cache.dispose();
    this.#decodeState.dispose();
    this.#prefillState?.dispose();
    this.#thinker.backend.dispose(this.#lastHidden);
    this.#thinker.backend.dispose(this.#lastInput);
  }

  #enter(): void {
    if (this.#disposed) throw new OmniError('BAD_INPUT', 'this session was disposed');
    if (this.#busy) throw new OmniError('BAD_INPUT', 'the session is busy with another prefill or generation; await it (or abort it) first');
    this.#busy = true;
  }

  #defaultStops(): number[] {
    const { eos, pad } = this.#thinker.config.tokens;
    return [eos, pad].filter((id): id is number => id !== null);
  }

  /** One decode step: feeds `id` at the next text position (c + rope_deltas, fact sheet §5.2). */
  async #decode(id: number): Promise<void> {
    this.#decodeIds[0] = id;
    this.#decodePositions.fill(this.#nextPosition);
    await this.#feed(this.#decodeState, { ids: this.#decodeIds, positions: this.#decodePositions });
    this.#pending = null;
  }

  async #feed(state: RunState, chunk: ThinkerChunk): Promise<void> {
    this.#lastLogits = await this.#thinker.forward(state, this.cache, chunk);
    const rows = state.rows;
    const { hidden } = this.#thinker.config.text;
    const b = this.#thinker.backend;
    b.copy(state.hidden, this.#lastHidden, (rows - 1) * hidden, 0, hidden);
    b.copy(state.inputs, this.#lastInput, (rows - 1) * hidden, 0, hidden);
    this.#length += rows;
    for (const p of chunk.positions) if (p >= this.#nextPosition) this.#nextPosition = p + 1;
  }

  #stateFor(rows: number): RunState {
    if (rows === 1) return this.#decodeState;
    if (this.#prefillState?.rows !== rows) {
      this.#prefillState?.dispose();
      this.#prefillState = this.#thinker.createRunState(rows);
    }
    return this.#prefillState;
  }

  #normalize(chunk: PromptChunk): { ids: Int32Array | null; positions: Int32Array; rows: number } {
    if (!chunk || typeof chunk !== 'object') throw new OmniError('BAD_INPUT', 'prefill needs a chunk { ids | embeddings, positions? }');
    let ids: Int32Array | null = null;
    let rows: number;
    if (chunk.ids !== undefined) {
      if (chunk.embeddings !== undefined) throw new OmniError('BAD_INPUT', 'a chunk carries either ids or embeddings, not both');
      if (!(chunk.ids instanceof Int32Array) && !Array.isArray(chunk.ids)) throw new OmniError('BAD_INPUT', 'chunk ids must be an Int32Array or an array of integers');
      const list = chunk.ids as ArrayLike<number>;
      const { vocab } = this.#thinker.config.text;
      for (let i = 0; i < list.length; i++) {
        if (!(Number.isSafeInteger(list[i]) && list[i] >= 0 && list[i] < vocab)) {
          throw new OmniError('BAD_INPUT', `chunk ids[${i}] = ${list[i]} is not a token id (an integer in [0, ${vocab}), outside the vocabulary)`);
        }
      }
      ids = Int32Array.from(list);
      rows = ids.length;
    } else if (chunk.embeddings !== undefined) {
      const e = chunk.embeddings;
      const base = e && typeof e === 'object' && 'rows' in e ? e : { rows: e as Tensor, offset: 0 };
      const hidden = this.#thinker.config.text.hidden;
      if (!base.rows || !Array.isArray(base.rows.shape) || base.rows.shape[base.rows.shape.length - 1] !== hidden) {
        throw new OmniError('SHAPE_MISMATCH', `chunk embeddings must be a tensor [T, ${hidden}] or { rows, offset }`);
      }
      rows = base.rows.size / hidden - base.offset;
    } else {
      throw new OmniError('BAD_INPUT', 'a chunk needs ids or embeddings');
    }
    if (!(rows >= 1)) throw new OmniError('BAD_INPUT', 'a prompt chunk needs at least one token');
    let positions = chunk.positions;
    if (positions === undefined) {
      if (chunk.media !== undefined) throw new OmniError('BAD_INPUT', 'a chunk with media needs its positions (tmropePositions); only text may omit them');
      positions = new Int32Array(3 * rows);
      for (let s = 0; s < 3; s++) for (let t = 0; t < rows; t++) positions[s * rows + t] = this.#nextPosition + t;
    } else if (!(positions instanceof Int32Array) || positions.length !== 3 * rows) {
      throw new OmniError('BAD_INPUT', `chunk positions must be an Int32Array of 3 × ${rows} values (T, H, W streams, stream-major)`);
    }
    return { ids, positions, rows };
  }
}

/** Positions of tokens [first, first + count) from stream-major [3, rows]. */
function slicePositions(positions: Int32Array, rows: number, first: number, count: number): Int32Array {
  if (count === rows) return positions;
  const out = new Int32Array(3 * count);
  for (let s = 0; s < 3; s++) out.set(positions.subarray(s * rows + first, s * rows + first + count), s * count);
  return out;
}

/**
 * Checks the media rows against the whole chunk's placeholders (before any
 * pass runs, so a mismatch leaves the cache untouched), then hands each pass
 * the rows its placeholders take (always an object: a prompt's placeholders
 * must get rows, unlike a decoded token's).
 */
function planMedia(ids: Int32Array, media: MediaEmbeddings | undefined, tokens: MediaTokenIds) {
  const next = new Map<MediaKind, { rows: Tensor; offset: number }>();
  for (const kind of MEDIA_KINDS) {
    const given: MediaRows | undefined = media?.[kind];
    if (given === undefined) continue;
    const base = given && typeof given === 'object' && 'rows' in given ? given : { rows: given as Tensor, offset: 0 };
    let count = 0;
    for (const id of ids) if (id === tokens[kind]) count++;
    if (count === 0) throw new OmniError('BAD_INPUT', `media.${kind} was given but the chunk has no ${kind} placeholder token (id ${tokens[kind]})`);
    const available = (base.rows?.shape?.[0] ?? 0) - base.offset;
    if (base.rows === given ? available !== count : available < count) {
      throw new OmniError('SHAPE_MISMATCH', `the chunk has ${count} ${kind} placeholders but media.${kind} has ${available} rows${base.rows === given ? '; pass { rows, offset } to use part of a tensor' : ` from offset ${base.offset}`}`);
    }
    next.set(kind, { rows: base.rows, offset: base.offset });
  }
  return (pass: Int32Array): MediaEmbeddings => {
    const out: MediaEmbeddings = {};
    for (const [kind, cursor] of next) {
      let count = 0;
      for (const id of pass) if (id === tokens[kind]) count++;
      if (count === 0) continue;
      out[kind] = { rows: cursor.rows, offset: cursor.offset };
      cursor.offset += count;
    }
    return out;
  };
}
