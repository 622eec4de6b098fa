/**
 * The Thinker's language model (fact sheet §6): a Qwen2.5 decoder with 3-D
 * M-RoPE (§5). Config, weights, preallocated run state and `forward()` live
 * here; `kvCache.ts` keeps keys and values, `session.ts` drives prefill,
 * decoding and sampling on top of `forward()`.
 *
 * forward(chunk): embedding (+ multimodal merge) → N × (rmsnorm → q/k/v →
 * M-RoPE → write K/V into the cache → causal GQA attention over the cache →
 * o_proj → residual → rmsnorm → SwiGLU → residual) → final norm → lm_head.
 *
 * The Talker has the same decoder layer (fact sheet §7.1); it reuses
 * `loadDecoderLayers`, `RunState` and `decoderLayers` with its own config.
 */
import {
  modelWeights, OmniError,
  type Backend, type DecoderConfig, type RopeSpec, type Tensor, type ThinkerConfig, type Weight, type WeightFormat, type WeightSource,
} from '@omniweb/core';
import { mropeSpec } from '@omniweb/tmrope';
import { KVCache, type CachePolicy } from './kvCache.js';
import { mergeMedia, type MediaEmbeddings } from './merge.js';

export type { ThinkerConfig, WeightSource } from '@omniweb/core';

/** One Qwen2 decoder layer (Thinker and Talker alike, fact sheet §2.1, §2.4). */
export interface DecoderLayerWeights {
  inputNorm: Tensor; // [hidden]
  q: Weight; // [heads·headDim, hidden]
  qBias: Tensor;
  k: Weight; // [kvHeads·headDim, hidden]
  kBias: Tensor;
  v: Weight;
  vBias: Tensor;
  o: Weight; // [hidden, heads·headDim], no bias (fact sheet §2.1)
  postNorm: Tensor;
  gate: Weight; // [intermediate, hidden]
  up: Weight;
  down: Weight; // [hidden, intermediate]
}

export interface ThinkerWeights {
  format: WeightFormat;
  embedTokens: Weight; // [vocab, hidden]
  layers: DecoderLayerWeights[];
  norm: Tensor;
  /** `embedTokens` itself when the checkpoint has no `thinker.lm_head.weight` (tied, fact sheet §2.1). */
  lmHead: Weight;
  tied: boolean;
}

/** The decoder layers under `prefix` (`thinker.model.layers.`, `talker.model.layers.`). */
export async function loadDecoderLayers(
  backend: Backend, source: WeightSource, prefix: string, config: DecoderConfig, format: WeightFormat,
): Promise<DecoderLayerWeights[]> {
  const { matrix, vector } = modelWeights(backend, source, format);
  const t = config;
  const hidden = `hidden_size ${t.hidden}`;
  const qRows = t.heads * t.headDim;
  const kvRows = t.kvHeads * t.headDim;
  const qBecause = `${t.heads} heads × head_dim ${t.headDim}`;
  const kvBecause = `${t.kvHeads} kv heads × head_dim ${t.headDim}`;
  const mlp = `intermediate_size ${t.intermediate}`;
  const layers: DecoderLayerWeights[] = [];
  for (let l = 0; l < t.layers; l++) {
    const p = `${prefix}${l}.`;
    layers.push({
      inputNorm: await vector(`${p}input_layernorm.weight`, t.hidden, hidden),
      q: await matrix(`${p}self_attn.q_proj.weight`, [qRows, t.hidden], `${qBecause}, ${hidden}`),
      qBias: await vector(`${p}self_attn.q_proj.bias`, qRows, qBecause),
      k: await matrix(`${p}self_attn.k_proj.weight`, [kvRows, t.hidden], `${kvBecause}, ${hidden}`),
      kBias: await vector(`${p}self_attn.k_proj.bias`, kvRows, kvBecause),
      v: await matrix(`${p}self_attn.v_proj.weight`, [kvRows, t.hidden], `${kvBecause}, ${hidden}`),
      vBias: await vector(`${p}self_attn.v_proj.bias`, kvRows, kvBecause),
      o: await matrix(`${p}self_attn.o_proj.weight`, [t.hidden, qRows], `${hidden}, ${qBecause}`),
      postNorm: await vector(`${p}post_attention_layernorm.weight`, t.hidden, hidden),
      gate: await matrix(`${p}mlp.gate_proj.weight`, [t.intermediate, t.hidden], `${mlp}, ${hidden}`),
      up: await matrix(`${p}mlp.up_proj.weight`, [t.intermediate, t.hidden], `${mlp}, ${hidden}`),
      down: await matrix(`${p}mlp.down_proj.weight`, [t.hidden, t.intermediate], `${hidden}, ${mlp}`),
    });
  }
  return layers;
}

/** Reads the Thinker LM's tensors, checking each shape against the config, and uploads them. */
export async function loadThinkerWeights(
  backend: Backend, source: WeightSource, config: ThinkerConfig, format: WeightFormat,
): Promise<ThinkerWeights> {
  const { matrix, vector } = modelWeights(backend, source, format);
  const t = config.text;
  const because = `vocab_size ${t.vocab}, hidden_size ${t.hidden}`;
  const embedTokens = await matrix('thinker.model.embed_tokens.weight', [t.vocab, t.hidden], because);
  const layers = await loadDecoderLayers(backend, source, 'thinker.model.layers.', t, format);
  const norm = await vector('thinker.model.norm.weight', t.hidden, `hidden_size ${t.hidden}`);
  const headName = 'thinker.lm_head.weight';
  const tied = !source.has(headName);
  const lmHead = tied ? embedTokens : await matrix(headName, [t.vocab, t.hidden], because);
  return { format, embedTokens, layers, norm, lmHead, tied };
}

/** Which rows get logits: the last one (sampling) or all (scoring, golden checks). */
export type LogitRows = 'last' | 'all';

/**
 * Every activation buffer of one forward pass over `rows` tokens, allocated
 * once (llama2.c's RunState). A decode session keeps a 1-row state for its
 * whole life, so decoding allocates nothing.
 */
export class RunState {
  readonly inputs: Tensor; // [T, hidden] input embeddings (layer-0 input; the Talker reads them)
  readonly x: Tensor; // [T, hidden] residual stream, ping-ponged with xAlt
  readonly xAlt: Tensor;
  readonly xb: Tensor; // [T, hidden] normed input of a block
  readonly q: Tensor; // [T, heads·headDim]
  readonly q3: Tensor; // view [T, heads, headDim]
  readonly k: Tensor;
  readonly k3: Tensor;
  readonly v: Tensor;
  readonly v3: Tensor;
  readonly att3: Tensor; // [T, heads, headDim]
  readonly att: Tensor; // view [T, heads·headDim]
  readonly xo: Tensor; // [T, hidden] o_proj / down_proj output
  readonly gate: Tensor; // [T, intermediate]
  readonly up: Tensor;
  readonly act: Tensor;
  readonly hidden: Tensor; // [T, hidden] after the final norm
  readonly lastRow: Tensor; // [1, hidden] lm_head input when only the last row is scored
  readonly logits: Tensor; // [1 or T, vocab]
  readonly positions: Tensor; // i32 [3, T]
  /** Host side of `positions` after the cache's shift, stream-major [3 · T]. */
  readonly hostPositions: Int32Array;
  readonly #backend: Backend;

  constructor(backend: Backend, config: DecoderConfig, readonly rows: number, readonly logitRows: LogitRows) {
    const { hidden, heads, kvHeads, headDim, intermediate, vocab } = config;
    if (!Number.isSafeInteger(rows) || rows < 1) throw new OmniError('BAD_INPUT', `a run state needs ≥ 1 rows, got ${rows}`);
    if (logitRows !== 'last' && logitRows !== 'all') throw new OmniError('BAD_INPUT', `logit rows ${JSON.stringify(logitRows)}; use 'last' or 'all'`);
    this.#backend = backend;
    const e = (shape: number[], dtype: 'f32' | 'i32' = 'f32') => backend.empty(shape, dtype);
    this.inputs = e([rows, hidden]);
    this.x = e([rows, hidden]);
    this.xAlt = e([rows, hidden]);
    this.xb = e([rows, hidden]);
    this.q = e([rows, heads * headDim]);
    this.k = e([rows, kvHeads * headDim]);
    this.v = e([rows, kvHeads * headDim]);
    this.att3 = e([rows, heads, headDim]);
    this.xo = e([rows, hidden]);
    this.gate = e([rows, intermediate]);
    this.up = e([rows, intermediate]);
    this.act = e([rows, intermediate]);
    this.hidden = e([rows, hidden]);
    this.lastRow = e([1, hidden]);
    this.logits = e([logitRows === 'all' ? rows : 1, vocab]);
    this.positions = e([3, rows], 'i32');
    this.hostPositions = new Int32Array(3 * rows);
    this.q3 = backend.reshape(this.q, [rows, heads, headDim]);
    this.k3 = backend.reshape(this.k, [rows, kvHeads, headDim]);
    this.v3 = backend.reshape(this.v, [rows, kvHeads, headDim]);
    this.att = backend.reshape(this.att3, [rows, heads * headDim]);
  }

  /** Frees the buffers (views share them and are not freed twice). */
  dispose(): void {
    const owned = [this.inputs, this.x, this.xAlt, this.xb, this.q, this.k, this.v, this.att3, this.xo, this.gate, this.up, this.act, this.hidden, this.lastRow, this.logits, this.positions];
    for (const t of owned) this.#backend.dispose(t);
  }
}

/** One chunk of the sequence: token ids (with media rows for their placeholders) or ready embeddings. */
export interface ThinkerChunk {
  /** Token ids [T]. */
  ids?: Int32Array;
  /**
   * Rows for the placeholder tokens among `ids` (fact sheet §6 multimodal
   * merge). When given, even empty, every placeholder needs a row; when
   * omitted, placeholders keep their token embedding (a decoded token).
   */
  media?: MediaEmbeddings;
  /**
   * Or merged input embeddings (e.g. HF `inputs_embeds`): a tensor [T, hidden],
   * or rows [offset, offset + T) of a longer one.
   */
  embeddings?: Tensor | { rows: Tensor; offset: number };
  /**
   * Absolute rotary positions, stream-major [3 · T] (T, H, W), as
   * `get_rope_index` / tmrope give them (fact sheet §5.2).
   */
  positions: Int32Array;
}

export interface ForwardOptions {
  /** Called after each decoder layer with the residual stream [T, hidden] (debugging, golden checks). */
  inspect?: (layer: number, residual: Tensor) => void | Promise<void>;
}

function embeddingRows(e: NonNullable<ThinkerChunk['embeddings']>): { rows: Tensor; offset: number } {
  return 'rows' in e ? e : { rows: e, offset: 0 };
}

/**
 * Whether every value is finite: x·0 is ±0 for finite x and NaN for ±Inf or NaN, so four
 * running sums answer it without a branch per element (2.5× faster than testing each value
 * over a vocabulary of logits, which every decode step checks).
 */
function isFinite32(values: Float32Array): boolean {
  let a = 0, b = 0, c = 0, d = 0;
  const n = values.length & ~3;
  for (let i = 0; i < n; i += 4) {
    a += values[i] * 0;
    b += values[i + 1] * 0;
    c += values[i + 2] * 0;
    d += values[i + 3] * 0;
  }
  for (let i = n; i < values.length; i++) a += values[i] * 0;
  return a + b + c + d === 0;
}

/**
 * The decoder layers over one chunk: reads `s.inputs` and `s.positions`,
 * writes each layer's keys/values into cache rows [start, start + T) and
 * attends causally over the cache's first start + T rows. Returns the
 * residual stream after the last layer (a buffer of `s`).
 */
export async function decoderLayers(
  b: Backend, layers: readonly DecoderLayerWeights[], s: RunState, cache: KVCache, start: number,
  rope: RopeSpec, rmsEps: number, inspect?: ForwardOptions['inspect'],
): Promise<Tensor> {
  const attention = { kvLength: start + s.rows, mask: { kind: 'causal', queryStart: start } } as const;
  let x = s.inputs; // the residual stream starts as the input embeddings
  const residual = (delta: Tensor) => {
    const next = x === s.x ? s.xAlt : s.x;
    b.add(x, delta, next);
    x = next;
  };
  for (let l = 0; l < layers.length; l++) {
    const w = layers[l];
    // Self-attention block (pre-norm).
    b.rmsnorm(x, w.inputNorm, rmsEps, s.xb);
    b.linears(s.xb, [{ w: w.q, bias: w.qBias, out: s.q }, { w: w.k, bias: w.kBias, out: s.k }, { w: w.v, bias: w.vBias, out: s.v }]);
    b.rotary(s.q3, s.positions, rope, s.q3);
    b.rotary(s.k3, s.positions, rope, s.k3);
    cache.write(l, s.k3, s.v3, start);
    cache.attend(l, s.q3, attention, s.att3); // GQA: heads share kv heads
    b.linear(s.att, w.o, null, s.xo);
    residual(s.xo);
    // SwiGLU MLP block (pre-norm): down(silu(gate(x)) ⊙ up(x)).
    b.rmsnorm(x, w.postNorm, rmsEps, s.xb);
    b.linears(s.xb, [{ w: w.gate, out: s.gate }, { w: w.up, out: s.up }]);
    b.siluMul(s.gate, s.up, s.act);
    b.linear(s.act, w.down, null, s.xo);
    residual(s.xo);
    if (inspect) await inspect(l, x);
  }
  return x;
}

export interface ThinkerLoadOptions {
  /** Matrix weights' precision (default f32); norms and biases stay f32. */
  format?: WeightFormat;
}

export class Thinker {
  readonly rope: RopeSpec;
  /**
   * Rows (p, p, p) for p < its length: a decode step's positions are copied
   * from here on the device, so decoding uploads nothing. Grown by doubling.
   */
  #positionTable: Tensor | null = null;
  /** Outgrown tables; queued copies of another session may still read them, so they go at dispose. */
  readonly #retired: Tensor[] = [];
  #disposed = false;

  private constructor(readonly backend: Backend, readonly config: ThinkerConfig, readonly weights: ThinkerWeights) {
    const t = config.text;
    this.rope = mropeSpec(t.headDim, t.ropeTheta, t.mropeSection); // fact sheet §5.1
    this.#tableCovering(t.maxPositions - 1);
  }

  /** Loads the Thinker LM from a checkpoint (`openCheckpoint`) with the config parsed from its config.json. */
  static async load(backend: Backend, source: WeightSource, config: ThinkerConfig, options: ThinkerLoadOptions = {}): Promise<Thinker> {
    if (!config?.text || !config.tokens) throw new OmniError('BAD_INPUT', 'Thinker.load needs the typed thinker config (parseOmniConfig(...).thinker)');
    return new Thinker(backend, config, await loadThinkerWeights(backend, source, config, options.format ?? 'f32'));
  }

  createRunState(rows: number, logitRows: LogitRows = 'last'): RunState {
    this.#checkLive();
    return new RunState(this.backend, this.config.text, rows, logitRows);
  }

  createCache(policy: CachePolicy): KVCache {
    this.#checkLive();
    const { layers, kvHeads, headDim } = this.config.text;
    return new KVCache(this.backend, { layers, kvHeads, headDim }, policy, this.rope);
  }

  /**
   * Runs one chunk through the model, appends its keys/values to `cache`
   * and returns the last row's logits (host copy). The chunk is committed to
   * the cache only when the logits are finite; otherwise the pass is rerun
   * layer by layer to name where NaN/Inf appeared (OmniError NUMERIC).
   */
  async forward(state: RunState, cache: KVCache, chunk: ThinkerChunk, options: ForwardOptions = {}): Promise<Float32Array> {
    this.#checkLive();
    const b = this.backend;
    const rows = this.#checkChunk(state, cache, chunk);
    const start = await cache.reserve(rows);
    // Evictions pull later positions down (kvCache.ts); the cache rotates by what it stores.
    const positions = state.hostPositions;
    for (let i = 0; i < positions.length; i++) positions[i] = chunk.positions[i] - cache.positionShift;
    this.#embed(state, chunk);
    const upload = this.#placePositions(state, positions);
    try {
      await this.#decoder(state, cache, start, options.inspect);
      this.#lmHead(state);
      const last = state.logits.shape[0] - 1;
      const vocab = this.config.text.vocab;
      const logits = (await b.read(state.logits, { offset: last * vocab, count: vocab })) as Float32Array;
      if (!isFinite32(logits)) throw await this.#locateNonFinite(state, cache, start);
      cache.commit(positions);
      return logits;
    } finally {
      if (upload) {
        // Queued work may still read the upload when the pass failed before its read-back.
        await b.sync().catch(() => undefined);
        b.dispose(upload);
      }
    }
  }

  /** Host copy of rows of a state tensor ([T, hidden]): the Talker reads final hidden states and input embeddings. */
  async readRows(t: Tensor, first: number, count: number): Promise<Float32Array> {
    const hidden = this.config.text.hidden;
    const rows = t?.shape?.[0];
    if (t?.shape?.length !== 2 || t.shape[1] !== hidden || !(Number.isSafeInteger(first) && Number.isSafeInteger(count) && first >= 0 && count >= 1 && first + count <= rows)) {
      throw new OmniError('BAD_INPUT', `readRows: rows [${first}, ${first + count}) of a tensor [${t?.shape?.join(', ')}]; expected a [rows, ${hidden}] tensor and a range inside it`);
    }
    return (await this.backend.read(t, { offset: first * hidden, count: count * hidden })) as Float32Array;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    const w = this.weights;
    const seen = new Set<Tensor | Weight>();
    for (const layer of w.layers) for (const t of Object.values(layer)) seen.add(t);
    for (const t of [w.embedTokens, w.norm, w.lmHead, this.#positionTable, ...this.#retired]) if (t) seen.add(t);
    for (const t of seen) this.backend.dispose(t);
  }

  #checkLive(): void {
    if (this.#disposed) throw new OmniError('BAD_INPUT', 'this Thinker was disposed');
  }

  #checkChunk(state: RunState, cache: KVCache, chunk: ThinkerChunk): number {
    if (!(state instanceof RunState)) throw new OmniError('BAD_INPUT', 'forward needs a RunState from createRunState');
    if (!(cache instanceof KVCache) || cache.layers !== this.weights.layers.length || cache.rowSize !== this.config.text.kvHeads * this.config.text.headDim) {
      throw new OmniError('BAD_INPUT', 'forward needs a KVCache of this model (createCache)');
    }
    const rows = state.rows;
    const { hidden, vocab } = this.config.text;
    if (!chunk || typeof chunk !== 'object') throw new OmniError('BAD_INPUT', 'forward needs a chunk { ids | embeddings, positions }');
    if ((chunk.ids === undefined) === (chunk.embeddings === undefined)) {
      throw new OmniError('BAD_INPUT', 'a chunk carries either ids or embeddings, exactly one of them');
    }
    if (chunk.ids !== undefined) {
      if (!(chunk.ids instanceof Int32Array) || chunk.ids.length !== rows) {
        throw new OmniError('BAD_INPUT', `chunk ids must be an Int32Array of ${rows} ids (the run state's rows)`);
      }
      for (const id of chunk.ids) {
        if (!(id >= 0 && id < vocab)) throw new OmniError('BAD_INPUT', `token id ${id} is outside the vocabulary [0, ${vocab})`);
      }
    } else {
      const { rows: e, offset } = embeddingRows(chunk.embeddings!);
      if (!e || !Array.isArray(e.shape) || e.backend !== this.backend.info.kind || e.dtype !== 'f32' || e.shape[e.shape.length - 1] !== hidden) {
        throw new OmniError('SHAPE_MISMATCH', `chunk embeddings must be ${this.backend.info.kind} f32 [n, ${hidden}] tensors`);
      }
      if (!Number.isSafeInteger(offset) || offset < 0 || offset + rows > e.size / hidden) {
        throw new OmniError('SHAPE_MISMATCH', `chunk embeddings: rows [${offset}, ${offset + rows}) are not inside a tensor of ${e.size / hidden} rows`);
      }
      if (chunk.media !== undefined) throw new OmniError('BAD_INPUT', 'media rows go with ids; embeddings are already merged');
    }
    const p = chunk.positions;
    if (!(p instanceof Int32Array) || p.length !== 3 * rows) {
      throw new OmniError('BAD_INPUT', `chunk positions must be an Int32Array of 3 × ${rows} values (T, H and W streams, stream-major)`);
    }
    return rows;
  }

  /**
   * Puts positions (stream-major [3, T]) in `state.positions`. A text token
   * (the three streams equal, the decode case) is copied from the position
   * table; anything else is uploaded, and that upload is returned to be
   * freed once the pass is done.
   */
  #placePositions(state: RunState, positions: Int32Array): Tensor | null {
    const b = this.backend;
    const p = positions[0];
    if (state.rows === 1 && positions[1] === p && positions[2] === p && p >= 0) {
      b.copy(this.#tableCovering(p), state.positions, 3 * p, 0, 3);
      return null;
    }
    const upload = b.tensor(positions, [3, state.rows]);
    b.copy(upload, state.positions, 0, 0, positions.length);
    return upload;
  }

  #tableCovering(position: number): Tensor {
    const current = this.#positionTable;
    if (current && current.shape[0] > position) return current;
    let length = Math.max(1024, current ? 2 * current.shape[0] : 0);
    while (length <= position) length *= 2;
    const rows = new Int32Array(3 * length);
    for (let p = 0; p < length; p++) rows.fill(p, 3 * p, 3 * p + 3);
    if (current) this.#retired.push(current);
    this.#positionTable = this.backend.tensor(rows, [length, 3]);
    return this.#positionTable;
  }

  /** Input embeddings: token rows with media merged in, or the embeddings given. */
  #embed(state: RunState, chunk: ThinkerChunk): void {
    const b = this.backend;
    if (chunk.embeddings) {
      const { rows, offset } = embeddingRows(chunk.embeddings);
      b.copy(rows, state.inputs, offset * this.config.text.hidden, 0, state.inputs.size);
      return;
    }
    b.embedding(this.weights.embedTokens, chunk.ids!, state.inputs);
    if (chunk.media) {
      const { audio, image, video } = this.config.tokens;
      mergeMedia(b, state.inputs, chunk.ids!, chunk.media, { audio, image, video });
    }
  }

  /** The decoder stack, then the final norm into `state.hidden`. */
  async #decoder(s: RunState, cache: KVCache, start: number, inspect?: ForwardOptions['inspect']): Promise<void> {
    const { rmsEps } = this.config.text;
    const x = await decoderLayers(this.backend, this.weights.layers, s, cache, start, this.rope, rmsEps, inspect);
    this.backend.rmsnorm(x, this.weights.norm, rmsEps, s.hidden);
  }

  #lmHead(s: RunState): void {
    const b = this.backend;
    if (s.logitRows === 'all' || s.rows === 1) {
      b.linear(s.hidden, this.weights.lmHead, null, s.logits);
      return;
    }
    const hidden = this.config.text.hidden;
    b.copy(s.hidden, s.lastRow, (s.rows - 1) * hidden, 0, hidden);
    b.linear(s.lastRow, this.weights.lmHead, null, s.logits);
  }

  /** Reruns the pass (same inputs, same cache rows) reading every layer's output, and names the first non-finite one. */
  async #locateNonFinite(state: RunState, cache: KVCache, start: number): Promise<OmniError> {
    const b = this.backend;
    const finite = async (t: Tensor) => isFinite32((await b.read(t)) as Float32Array);
    const where = `a chunk of ${state.rows} tokens at cache row ${start}`;
    if (!(await finite(state.inputs))) return new OmniError('NUMERIC', `NaN or Inf in the input embeddings of ${where} (token or media rows)`);
    let bad = -1;
    await this.#decoder(state, cache, start, async (layer, residual) => {
      if (bad < 0 && !(await finite(residual))) bad = layer;
    });
    if (bad >= 0) return new OmniError('NUMERIC', `NaN or Inf first appears in the output of decoder layer ${bad} (of ${this.weights.layers.length}) for ${where}`);
    if (!(await finite(state.hidden))) return new OmniError('NUMERIC', `NaN or Inf first appears in the final norm for ${where}`);
    return new OmniError('NUMERIC', `NaN or Inf in the logits (lm_head) for ${where}; every hidden state is finite`);
  }
}
