/**
 * The Talker (fact sheet §7): a dual-track decoder that turns the Thinker's
 * hidden states and token embeddings into codec codes.
 *
 * Each input row lives in Thinker width (`embedding_size`): a Thinker track
 * (final-norm hidden state + token embedding) plus, where the reference adds
 * one, a codec track (`embed_tokens` row of a codec id). `thinker_to_talker_proj`
 * maps the sum to the talker width, then the Qwen2 decoder stack runs and
 * `codec_head` scores the next code.
 *
 * The decoder stack is the Thinker's own (§7.1: the same layer class, the same
 * M-RoPE; STYLE.md: their differences are configuration): a `Thinker` built
 * from the talker.* tensors with the talker's numbers (its explicit head_dim
 * included) runs every layer, the KV cache and the run states. It is fed
 * projected rows only, never ids.
 *
 * Streaming (§7.2 step 6): `talker.start(prompt)` gives a `TalkerStream`;
 * `push()` hands it each reply token's hidden state and embedding as the
 * Thinker feeds the token, `endOfText()` says the reply is over, and `codes()`
 * yields codec codes as they are sampled. Decode step k needs reply token k,
 * so the Talker runs one token behind the Thinker.
 *
 * Codes at or above the DiT's table (`num_embeds` + 1 rows): the reference
 * hands the talker's output to token2wav unchanged (no clamp, no filter), and
 * the DiT's embedding lookup then fails. We do the same: every sampled code
 * but the last is yielded as it is, and token2wav rejects what it cannot embed.
 */
import {
  checkWeightShape, OmniError,
  type Backend, type Speaker, type TalkerConfig, type Tensor, type ThinkerConfig, type Weight, type WeightFormat,
} from '@omniweb/core';
import {
  Sampler, Thinker, TokenHistory, createEvictionPolicy,
  type CachePolicy, type KVCache, type RunState, type SamplingOptions, type WeightSource,
} from '@omniweb/thinker';
import { decodePositions, talkerTmropeConfig, tmropePositions, type TmropeInputs } from '@omniweb/tmrope';

export type { TalkerConfig } from '@omniweb/core';

/** HF `generate`'s talker sampling defaults (fact sheet §7.3); `temperature: 0` keeps the penalty and decodes greedily. */
export const TALKER_SAMPLING = { temperature: 0.9, topK: 40, topP: 0.8, repetitionPenalty: 1.05 } as const;

/** `talker_max_new_tokens` (fact sheet §7.3): ≈ 82 s of speech at 50 codes/s. */
export const TALKER_MAX_NEW_TOKENS = 4096;

export interface TalkerWeights {
  format: WeightFormat;
  /** thinker_to_talker_proj: [hidden, embeddingSize], with bias [hidden]. */
  proj: Weight;
  projBias: Tensor;
  /** talker.model.embed_tokens: codec embeddings in Thinker width, [vocab, embeddingSize]. */
  codecEmbedding: Weight;
}

export interface TalkerLoadOptions {
  /** Matrix weights' precision (default f32); norms and biases stay f32. */
  format?: WeightFormat;
}

/**
 * The Thinker's loader reads `thinker.model.*` and an output head. This view
 * serves it the talker's decoder under those names (§2.4: the layer tensors
 * are named alike). The loader also requires a token table [vocab, hidden];
 * the Talker has none of that shape (its embed_tokens is Thinker-wide and is
 * applied before the projection), so it gets `codec_head` [vocab, hidden] and
 * no lm_head: tied, the loader uploads codec_head once and uses it as the
 * output head. The table is never read as a table, since the decoder is only
 * fed projected rows.
 */
function decoderTensor(name: string): string | null {
  if (name === 'thinker.model.embed_tokens.weight') return 'talker.codec_head.weight';
  return name.startsWith('thinker.model.') ? `talker.${name.slice('thinker.'.length)}` : null;
}

function talkerDecoderSource(source: WeightSource): WeightSource {
  const mapped = (name: string): string => {
    const talkerName = decoderTensor(name);
    if (talkerName === null) throw new OmniError('INTERNAL', `the talker's decoder has no tensor for ${name}`);
    return talkerName;
  };
  return {
    has: (name) => decoderTensor(name) !== null && source.has(mapped(name)),
    info: (name) => source.info(mapped(name)),
    readF32: (name) => source.readF32(mapped(name)),
    readMatrix: (name, format) => source.readMatrix(mapped(name), format),
  };
}

/** Errors of the Thinker's loader name the checkpoint's tensors, not the view's. */
function withTalkerNames(e: unknown): unknown {
  if (!(e instanceof OmniError)) return e;
  const message = e.message.replaceAll('thinker.model.embed_tokens.weight', 'talker.codec_head.weight').replaceAll('thinker.model.', 'talker.model.');
  return new OmniError(e.code, message, { cause: e });
}

function decoderConfig(thinker: ThinkerConfig, talker: TalkerConfig): ThinkerConfig {
  const { hidden, layers, heads, kvHeads, headDim, intermediate, rmsEps, ropeTheta, mropeSection, vocab, maxPositions } = talker;
  return {
    ...thinker,
    text: { hidden, layers, heads, kvHeads, headDim, intermediate, rmsEps, ropeTheta, mropeSection, vocab, maxPositions, tieWordEmbeddings: true },
  };
}

export class Talker {
  #disposed = false;

  private constructor(
    readonly thinker: Thinker,
    readonly config: TalkerConfig,
    /** The decoder stack (talker.model.layers, norm, codec_head), run by the Thinker's forward. */
    readonly decoder: Thinker,
    readonly weights: TalkerWeights,
  ) {}

  get backend(): Backend {
    return this.thinker.backend;
  }

  /**
   * Loads the Talker beside a loaded Thinker (same backend): the Talker reads
   * the Thinker's token table for the speaker bos and the TTS text markers (§7.2).
   * `config` is `parseOmniConfig(...).talker`.
   */
  static async load(thinker: Thinker, source: WeightSource, config: TalkerConfig, options: TalkerLoadOptions = {}): Promise<Talker> {
    if (!(thinker instanceof Thinker)) throw new OmniError('BAD_INPUT', 'Talker.load needs the loaded Thinker (Thinker.load) as its first argument');
    if (!config?.codec || !config.ttsText || !config.tokens) throw new OmniError('BAD_INPUT', 'Talker.load needs the typed talker config (parseOmniConfig(...).talker)');
    if (!source || typeof source.readMatrix !== 'function') throw new OmniError('BAD_INPUT', 'Talker.load needs a weight source such as openCheckpoint(...)');
    const width = thinker.config.text.hidden;
    if (config.embeddingSize !== width) {
      throw new OmniError('BAD_CONFIG', `talker_config.embedding_size is ${config.embeddingSize}, but the Thinker is ${width} wide; the talker's inputs are Thinker rows (§7.1)`);
    }
    const format = options.format ?? 'f32';
    const backend = thinker.backend;
    let decoder: Thinker;
    try {
      decoder = await Thinker.load(backend, talkerDecoderSource(source), decoderConfig(thinker.config, config), { format });
    } catch (e) {
      throw withTalkerNames(e);
    }
    const loaded: (Tensor | Weight)[] = [];
    try {
      const because = `hidden_size ${config.hidden}, embedding_size ${config.embeddingSize}`;
      checkWeightShape(source, 'talker.thinker_to_talker_proj.weight', [config.hidden, config.embeddingSize], because);
      checkWeightShape(source, 'talker.thinker_to_talker_proj.bias', [config.hidden], `hidden_size ${config.hidden}`);
      checkWeightShape(source, 'talker.model.embed_tokens.weight', [config.vocab, config.embeddingSize], `vocab_size ${config.vocab}, embedding_size ${config.embeddingSize}`);
      const proj = backend.weight(await source.readMatrix('talker.thinker_to_talker_proj.weight', format));
      loaded.push(proj);
      const projBias = backend.tensor(await source.readF32('talker.thinker_to_talker_proj.bias'), [config.hidden]);
      loaded.push(projBias);
      const codecEmbedding = backend.weight(await source.readMatrix('talker.model.embed_tokens.weight', format));
      return new Talker(thinker, config, decoder, { format, proj, projBias, codecEmbedding });
    } catch (e) {
      for (const t of loaded) backend.dispose(t);
      decoder.dispose();
      throw e;
    }
  }

  /**
   * Begins one spoken reply: validates the prompt, the speaker and the options.
   * Nothing runs until `codes()` is iterated and the first reply token is pushed.
   */
  start(prompt: TalkerPrompt, options: TalkerStartOptions): TalkerStream {
    if (this.#disposed) throw new OmniError('BAD_INPUT', 'this Talker was disposed');
    return new TalkerStream(this, prompt, options);
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.decoder.dispose();
    const w = this.weights;
    for (const t of [w.proj, w.projBias, w.codecEmbedding]) this.backend.dispose(t);
  }
}

/**
 * The Thinker's prompt as the Talker needs it: the ids and media shapes for the
 * talker's rope index (§7.2 step 5), and per prompt token the Thinker's
 * final-norm hidden state H_k and layer-0 input Ê_k (`ThinkerSession.prefill`
 * with `{ hidden: true, embeddings: true }`), each [P · embeddingSize]. The
 * arrays are read at the prefill, so they must stay unchanged until then.
 */
export interface TalkerPrompt extends TmropeInputs {
  thinkerHidden: Float32Array;
  thinkerEmbeddings: Float32Array;
}

/** What the Thinker computed while feeding one reply token r_j: H(r_j) and E(r_j), each [embeddingSize]. */
export interface ReplyToken {
  hidden: Float32Array;
  embedding: Float32Array;
}

/** One Talker forward pass, for golden checks and debugging. Tensors are valid during the call only. */
export interface TalkerStepInspection {
  /** 0: the prefill; k ≥ 1: the decode step that fed the (k−1)-th code. */
  step: number;
  /** thinker_to_talker_proj input [rows, embeddingSize] and output [rows, hidden]. */
  projIn: Tensor;
  projOut: Tensor;
  /** Absolute rotary positions of the rows, stream-major [3 · rows]. */
  positions: Int32Array;
  /** The last row's codec logits before penalty and suppression; changed afterwards (copy it to keep it). */
  logits: Float32Array;
}

export interface TalkerStartOptions {
  /** The voice: its `bosToken` (a Thinker token id) from the speaker dictionary (`readSpeakers`, spk_dict.pt). */
  speaker: Pick<Speaker, 'bosToken'>;
  /** Over `TALKER_SAMPLING`; `{ temperature: 0 }` is greedy with the reference's repetition penalty. */
  sampling?: SamplingOptions;
  /** Tokens generated at most, the final (dropped) one included, as the reference counts them (default 4096). */
  maxNewTokens?: number;
  /** Default: a plain cache holding the whole utterance. */
  cache?: CachePolicy;
  /** Largest prefill pass (default 256 rows). */
  maxChunkRows?: number;
  inspect?: (step: TalkerStepInspection) => void | Promise<void>;
}

export interface CodesOptions {
  /** Stops the loop with ABORTED, also while it waits for the Thinker. */
  signal?: AbortSignal;
}

/**
 * Host FIFO of queued reply rows H(r_j) + E(r_j) (§7.2 step 3), in one buffer
 * that doubles when full, so pushing a token allocates nothing.
 */
class ReplyQueue {
  #rows: Float32Array;
  #capacity = 16;
  #head = 0;
  #length = 0;

  constructor(readonly width: number) {
    this.#rows = new Float32Array(this.#capacity * width);
  }

  get length(): number {
    return this.#length;
  }

  /** Stores hidden + embedding in float32, as the reference sums them. */
  push(hidden: Float32Array, embedding: Float32Array): void {
    if (this.#length === this.#capacity) this.#grow();
    const w = this.width;
    const at = ((this.#head + this.#length) % this.#capacity) * w;
    const rows = this.#rows;
    for (let i = 0; i < w; i++) rows[at + i] = hidden[i] + embedding[i];
    this.#length++;
  }

  /** The oldest row (a view, valid until the next push). */
  head(): Float32Array {
    if (this.#length === 0) throw new OmniError('INTERNAL', 'the reply queue is empty');
    return this.#rows.subarray(this.#head * this.width, (this.#head + 1) * this.width);
  }

  shift(): void {
    if (this.#length === 0) throw new OmniError('INTERNAL', 'the reply queue is empty');
    this.#head = (this.#head + 1) % this.#capacity;
    this.#length--;
  }

  #grow(): void {
    const w = this.width;
    const rows = new Float32Array(2 * this.#capacity * w);
    for (let i = 0; i < this.#length; i++) {
      const from = ((this.#head + i) % this.#capacity) * w;
      rows.set(this.#rows.subarray(from, from + w), i * w);
    }
    this.#rows = rows;
    this.#capacity *= 2;
    this.#head = 0;
  }
}

function aborted(): OmniError {
  return new OmniError('ABORTED', 'talker decoding was aborted');
}

/**
 * One spoken reply. Reply token j's hidden state and embedding are pushed as
 * the Thinker feeds the token (its `TokenEvent` j + 1 carries them); the last
 * reply token, which the Thinker never feeds, is never pushed. The prefill
 * runs once r₀ is in; decode step k consumes r_k, then text-eos, then text-pad
 * forever (§7.2 steps 3–4).
 */
export class TalkerStream {
  /** P: Thinker prompt tokens. */
  readonly promptLength: number;
  /** Talker rope deltas (§5.2): decode row c sits at c + ropeDeltas. */
  readonly ropeDeltas: number;
  readonly maxNewTokens: number;
  readonly maxChunkRows: number;
  readonly #talker: Talker;
  readonly #prompt: TalkerPrompt;
  /** Positions of the P + 2 prefill rows, stream-major. */
  readonly #prefillPositions: Int32Array;
  readonly #sampler: Sampler;
  readonly #history: TokenHistory;
  readonly #stops: ReadonlySet<number>;
  readonly #suppressed: number;
  readonly #speakerBos: number;
  readonly #policy: CachePolicy;
  readonly #inspect: TalkerStartOptions['inspect'];
  readonly #queue: ReplyQueue;
  /** Reply tokens pushed so far. */
  #pushed = 0;
  #textEnded = false;
  /** text-eos has been fed; text-pad repeats from now on. */
  #endSent = false;
  /** Rows fed to the decoder (absolute, evicted ones included). */
  #fed = 0;
  #iterating = false;
  #finished = false;
  #disposed = false;
  #wake: (() => void) | null = null;
  // Decode-step buffers, allocated when decoding starts and kept to the end.
  #cache: KVCache | null = null;
  #decodeState: RunState | null = null;
  #step: { ids: Int32Array; positions: Int32Array; codeEmbedding: Tensor; projIn: Tensor; projOut: Tensor; textEos: Tensor; textPad: Tensor } | null = null;

  constructor(talker: Talker, prompt: TalkerPrompt, options: TalkerStartOptions) {
    if (!(talker instanceof Talker)) throw new OmniError('BAD_INPUT', 'a talker stream needs a loaded Talker (Talker.load); use talker.start(prompt, options)');
    this.#talker = talker;
    const { config } = talker;
    const width = config.embeddingSize;
    const thinkerVocab = talker.thinker.config.text.vocab;
    if (!options || typeof options !== 'object') throw new OmniError('BAD_INPUT', 'start needs options with at least the speaker ({ speaker: speakers.get(name) })');
    const bos = options.speaker?.bosToken;
    if (!(Number.isSafeInteger(bos) && bos >= 0 && bos < thinkerVocab)) {
      throw new OmniError('BAD_INPUT', `speaker bosToken ${JSON.stringify(bos)} is not a Thinker token id below ${thinkerVocab}; pass a speaker from readSpeakers(spk_dict.pt)`);
    }
    this.#speakerBos = bos;
    if (!prompt || typeof prompt !== 'object') throw new OmniError('BAD_INPUT', 'start needs the prompt { inputIds, media shapes, thinkerHidden, thinkerEmbeddings }');
    // The talker's own rope index over the prompt (§7.2 step 5); it validates ids against the media shapes.
    const { positionIds, ropeDeltas } = tmropePositions(prompt, talkerTmropeConfig(config));
    const P = prompt.inputIds.length;
    for (const key of ['thinkerHidden', 'thinkerEmbeddings'] as const) {
      const rows = prompt[key];
      if (!(rows instanceof Float32Array) || rows.length !== P * width) {
        throw new OmniError('BAD_INPUT', `prompt.${key} must be a Float32Array of ${P} × ${width} values (one Thinker row per prompt token), got ${rows instanceof Float32Array ? rows.length : typeof rows}`);
      }
    }
    this.promptLength = P;
    this.ropeDeltas = ropeDeltas;
    // Speaker bos and r₀ follow the prompt as text (§5.2: max + 1 on); the deltas stay.
    const tail = decodePositions(P, 2, ropeDeltas);
    this.#prefillPositions = new Int32Array(3 * (P + 2));
    for (let s = 0; s < 3; s++) {
      this.#prefillPositions.set(positionIds.subarray(s * P, (s + 1) * P), s * (P + 2));
      this.#prefillPositions.set(tail.subarray(2 * s, 2 * s + 2), s * (P + 2) + P);
    }
    this.#prompt = prompt;

    const maxNewTokens = options.maxNewTokens ?? TALKER_MAX_NEW_TOKENS;
    if (!Number.isSafeInteger(maxNewTokens) || maxNewTokens < 1) throw new OmniError('BAD_INPUT', `maxNewTokens ${maxNewTokens} must be an integer ≥ 1`);
    this.maxNewTokens = maxNewTokens;
    const maxChunkRows = options.maxChunkRows ?? 256;
    if (!Number.isSafeInteger(maxChunkRows) || maxChunkRows < 1) throw new OmniError('BAD_INPUT', `maxChunkRows ${maxChunkRows} must be an integer ≥ 1`);
    // The last token is never fed, so P + 2 + maxNewTokens − 1 rows hold the whole utterance.
    this.#policy = options.cache ?? { kind: 'plain', capacity: P + 1 + maxNewTokens };
    createEvictionPolicy(this.#policy); // refuses a bad policy now rather than at the first code
    this.maxChunkRows = this.#policy.kind === 'sinkWindow' ? Math.min(maxChunkRows, this.#policy.window) : maxChunkRows;
    if (options.inspect !== undefined && typeof options.inspect !== 'function') throw new OmniError('BAD_INPUT', 'inspect must be a function');
    this.#inspect = options.inspect;

    const { codec } = config;
    this.#sampler = new Sampler(config.vocab, { ...TALKER_SAMPLING, ...options.sampling });
    // The penalty's history starts with the prefill's codec ids: mask × P, pad, bos (§7.3).
    this.#history = new TokenHistory(config.vocab);
    this.#history.addAll([codec.mask, codec.pad, codec.start]);
    this.#stops = new Set([codec.pad, codec.end]);
    this.#suppressed = codec.start;
    this.#queue = new ReplyQueue(width);
  }

  /** Hands over reply token j's H(r_j) and E(r_j), in order. Ignored once the Talker has stopped. */
  push(token: ReplyToken): void {
    this.#checkLive();
    if (this.#textEnded) throw new OmniError('BAD_INPUT', 'push after endOfText: the reply is already over');
    const width = this.#talker.config.embeddingSize;
    const hidden = token?.hidden;
    const embedding = token?.embedding;
    if (!(hidden instanceof Float32Array) || hidden.length !== width || !(embedding instanceof Float32Array) || embedding.length !== width) {
      throw new OmniError('BAD_INPUT', `push needs { hidden, embedding }, each a Float32Array of ${width} values (TokenEvent with hidden and embedding)`);
    }
    if (this.#finished) return;
    this.#queue.push(hidden, embedding);
    this.#pushed++;
    this.#wakeUp();
  }

  /** The Thinker finished its reply: the Talker goes on with text-eos, then text-pad. */
  endOfText(): void {
    this.#checkLive();
    if (this.#textEnded) throw new OmniError('BAD_INPUT', 'endOfText was already called');
    this.#textEnded = true;
    this.#wakeUp();
  }

  /**
   * Codec codes as they are sampled, for token2wav. Stops after a stop code
   * (codec pad or end) or `maxNewTokens`; as in the reference the last
   * token generated is not a code (§7.3: `talker_result[:, P+2 : -1]`).
   * Can be iterated once; the stream's buffers are freed when it ends.
   */
  async *codes(options: CodesOptions = {}): AsyncGenerator<number, void, undefined> {
    this.#checkLive();
    if (this.#iterating) throw new OmniError('BAD_INPUT', 'codes() can be iterated once per stream');
    this.#iterating = true;
    const signal = options?.signal;
    const onAbort = () => this.#wakeUp();
    signal?.addEventListener('abort', onAbort);
    try {
      await this.#until(() => this.#pushed > 0 || this.#textEnded, signal);
      if (this.#pushed === 0) {
        throw new OmniError('BAD_INPUT', 'the reply ended before any token was pushed; speech needs the first reply token the Thinker fed (§7.2)');
      }
      let logits = await this.#prefill();
      for (let n = 0; ; n++) {
        if (signal?.aborted) throw aborted();
        logits[this.#suppressed] = -Infinity; // codec bos is never sampled (§7.3)
        const code = this.#sampler.pick(logits, this.#history);
        this.#history.add(code);
        if (this.#stops.has(code) || n === this.maxNewTokens - 1) return;
        yield code;
        logits = await this.#decode(code, signal);
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.#finished = true;
      this.#release();
    }
  }

  /** Frees the stream's buffers; an iteration in progress ends with ABORTED at its next wait or step. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#finished = true;
    if (this.#iterating) this.#wakeUp();
    else this.#release();
  }

  #checkLive(): void {
    if (this.#disposed) throw new OmniError('BAD_INPUT', 'this talker stream was disposed');
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async #until(ready: () => boolean, signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      if (this.#disposed) throw new OmniError('ABORTED', 'the talker stream was disposed while decoding');
      if (signal?.aborted) throw aborted();
      if (ready()) return;
      await new Promise<void>((resolve) => { this.#wake = resolve; });
    }
  }

  /**
   * The P + 2 prefill rows in Thinker width (§7.2 step 2): H_k + Ê_k with Ê
   * zeroed at media placeholders, then E(speaker bos) + codec(pad), then
   * H(r₀) + E(r₀) + codec(bos); projected and run in passes.
   */
  async #prefill(): Promise<Float32Array> {
    const talker = this.#talker;
    const b = talker.backend;
    const { codec, tokens, embeddingSize: D, hidden } = talker.config;
    const prompt = this.#prompt;
    const P = this.promptLength;
    const rows = P + 2;
    const temporaries: Tensor[] = [];
    const keep = <T extends Tensor>(t: T): T => { temporaries.push(t); return t; };
    const states: RunState[] = [];
    this.#cache = talker.decoder.createCache(this.#policy);
    try {
      const thinkerHidden = keep(b.tensor(prompt.thinkerHidden, [P, D]));
      const thinkerInputs = keep(b.tensor(prompt.thinkerEmbeddings, [P, D]));
      const projIn = keep(b.empty([rows, D]));
      const sum = keep(b.add(thinkerHidden, thinkerInputs));
      b.copy(sum, projIn, 0, 0, P * D);
      // Media rows keep H alone (Ê zeroed, §7.2 step 1): copy H over each run of placeholders.
      const ids = prompt.inputIds;
      const isMedia = (id: number) => id === tokens.audio || id === tokens.image || id === tokens.video;
      for (let k = 0; k < P;) {
        if (!isMedia(ids[k])) { k++; continue; }
        let end = k + 1;
        while (end < P && isMedia(ids[end])) end++;
        b.copy(thinkerHidden, projIn, k * D, k * D, (end - k) * D);
        k = end;
      }
      // The codec track only on the last two rows: pad under the speaker bos, bos under r₀.
      const textTail = keep(b.empty([2, D]));
      const speakerBos = keep(b.embedding(talker.thinker.weights.embedTokens, Int32Array.of(this.#speakerBos)));
      b.copy(speakerBos, textTail, 0, 0, D);
      const firstReply = keep(b.tensor(this.#queue.head(), [1, D]));
      b.copy(firstReply, textTail, 0, D, D);
      const codecTail = keep(b.embedding(talker.weights.codecEmbedding, Int32Array.of(codec.pad, codec.start)));
      const tail = keep(b.add(textTail, codecTail));
      b.copy(tail, projIn, 0, P * D, 2 * D);
      const projOut = keep(b.empty([rows, hidden]));
      b.linear(projIn, talker.weights.proj, talker.weights.projBias, projOut);

      let logits: Float32Array | null = null;
      for (let first = 0; first < rows; first += this.maxChunkRows) {
        const count = Math.min(this.maxChunkRows, rows - first);
        let state = states.find((s) => s.rows === count);
        if (!state) {
          state = talker.decoder.createRunState(count);
          states.push(state);
        }
        const positions = new Int32Array(3 * count);
        for (let s = 0; s < 3; s++) positions.set(this.#prefillPositions.subarray(s * rows + first, s * rows + first + count), s * count);
        logits = await talker.decoder.forward(state, this.#cache, { embeddings: { rows: projOut, offset: first }, positions });
      }
      this.#queue.shift();
      this.#fed = rows;
      await this.#inspect?.({ step: 0, projIn, projOut, positions: this.#prefillPositions, logits: logits! });
      this.#allocateStep();
      return logits!;
    } finally {
      for (const s of states) s.dispose();
      for (const t of temporaries) b.dispose(t);
    }
  }

  #allocateStep(): void {
    const talker = this.#talker;
    const b = talker.backend;
    const { embeddingSize: D, hidden, ttsText } = talker.config;
    const embedTokens = talker.thinker.weights.embedTokens;
    this.#decodeState = talker.decoder.createRunState(1);
    this.#step = {
      ids: new Int32Array(1),
      positions: new Int32Array(3),
      codeEmbedding: b.empty([1, D]),
      projIn: b.empty([1, D]),
      projOut: b.empty([1, hidden]),
      // The queue's tail entries are Thinker embeddings of the TTS markers (§7.2 step 3).
      textEos: b.embedding(embedTokens, Int32Array.of(ttsText.end)),
      textPad: b.embedding(embedTokens, Int32Array.of(ttsText.pad)),
    };
  }

  /**
   * Decode step (§7.2 step 4): codec(previous code) + the queue head: the
   * next reply row, then text-eos once, then text-pad for good.
   */
  async #decode(code: number, signal: AbortSignal | undefined): Promise<Float32Array> {
    await this.#until(() => this.#queue.length > 0 || this.#textEnded, signal);
    const talker = this.#talker;
    const b = talker.backend;
    const s = this.#step!;
    s.ids[0] = code;
    b.embedding(talker.weights.codecEmbedding, s.ids, s.codeEmbedding);
    let upload: Tensor | null = null;
    let text: Tensor;
    if (this.#queue.length > 0) {
      // Host rows reach the device through one upload; the Backend has no write into a live tensor.
      upload = b.tensor(this.#queue.head(), [1, talker.config.embeddingSize]);
      text = upload;
    } else {
      text = this.#endSent ? s.textPad : s.textEos;
      this.#endSent = true;
    }
    try {
      b.add(s.codeEmbedding, text, s.projIn);
      b.linear(s.projIn, talker.weights.proj, talker.weights.projBias, s.projOut);
      s.positions.fill(this.#fed + this.ropeDeltas);
      const logits = await talker.decoder.forward(this.#decodeState!, this.#cache!, { embeddings: s.projOut, positions: s.positions });
      this.#fed++;
      if (upload) this.#queue.shift();
      await this.#inspect?.({ step: this.#fed - this.promptLength - 2, projIn: s.projIn, projOut: s.projOut, positions: s.positions, logits });
      return logits;
    } finally {
      if (upload) b.dispose(upload);
    }
  }

  #release(): void {
    const b = this.#talker.backend;
    this.#cache?.dispose();
    this.#decodeState?.dispose();
    if (this.#step) {
      const s = this.#step;
      for (const t of [s.codeEmbedding, s.projIn, s.projOut, s.textEos, s.textPad]) b.dispose(t);
    }
    this.#cache = null;
    this.#decodeState = null;
    this.#step = null;
  }
}
