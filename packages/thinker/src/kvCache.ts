/**
 * The KV cache of a Qwen2-style decoder (the Thinker, and the Talker, which
 * has the same layer): per layer `capacity` rows of keys and values
 * `[kvHeads, headDim]` (f32 tensors, or an 8-bit `KV8`: see Storage below),
 * allocated once on the device, rows in sequence order. Keys are stored
 * already rotated (M-RoPE, fact sheet §5.1), so attention reads the first
 * `length` rows as they are.
 *
 * What happens when a chunk does not fit is the policy's decision:
 * - `plain`: nothing is dropped; the chunk is refused with CONTEXT_OVERFLOW.
 * - `sinkWindow` (StreamingLLM): the first `sink` rows stay forever, the
 *   most recent rows fill the remaining `window`, rows in between are dropped.
 * A policy only names row ranges to drop (`Eviction`); compacting the tensors
 * and re-positioning the keys is this module's job, so heavy-hitter (H2O)
 * eviction, which drops scattered rows, plugs in as another policy; a
 * rollback (a withdrawn turn, a rejected speculative draft) only lowers
 * `length` (`rewind`: rows past it are never read).
 *
 * Re-positioning. StreamingLLM gives cached tokens positions by their place
 * in the cache, so after dropping a gap the rows behind it move closer to
 * the sinks. We close the gap by rotating the moved keys once, at eviction,
 * by −Δ (Δ: the position gap closed), rather than storing un-rotated keys and
 * rotating the whole cache before every attention call:
 * - rotations compose per frequency, R(p)·R(−Δ) = R(p − Δ), and M-RoPE allows
 *   it because all three position streams shift by the same Δ;
 * - the cost is paid once per evicted block instead of once per decoded token
 *   over the full cache, and no second key buffer is read at attention time;
 * - while nothing is evicted (sink + window ≥ sequence length) the cache runs
 *   exactly the plain code path, so it equals the full cache bit for bit.
 * The price is one f32 rounding per eviction on the moved keys (≈1 ulp).
 *
 * Storage. Rows are f32, or (`storage: 'int8'`, on backends with `Backend.kv8`: wasm) 8-bit
 * codes with one scale per row and head: a quarter of the bytes that a decode step reads per
 * cached token, and attention on integer dots (kernels/wasm/attention.c), about twice as fast
 * at 4096 tokens. An eviction dequantizes the moved rows, turns their keys and quantizes them
 * again: a moved key's codes change by at most one step per eviction it takes part in.
 */
import { OmniError, type AttentionOptions, type Backend, type KV8, type RopeSpec, type Tensor } from '@omniweb/core';

/** Rows and heads of a decoder's cache. */
export interface KVCacheShape {
  layers: number;
  kvHeads: number;
  headDim: number;
}

/** How rows are kept: f32, or 8-bit codes and a scale per row and head (see above). */
export type CacheStorage = 'f32' | 'int8';

export type CachePolicy = (
  | { kind: 'plain'; capacity: number }
  /**
   * StreamingLLM: capacity = sink + window. When full, `evictStep` rows after
   * the sinks are dropped at once (default ⌈window / 16⌉), so the cost of
   * moving the window is paid once per `evictStep` tokens; the window then
   * holds between window − evictStep + 1 and window recent rows.
   */
  | { kind: 'sinkWindow'; sink: number; window: number; evictStep?: number }
) & { storage?: CacheStorage };

/** Rows [start, start + count) are dropped. */
export interface Eviction {
  start: number;
  count: number;
}

/** Decides which rows leave so that `incoming` rows fit behind `length` rows. */
export interface EvictionPolicy {
  readonly capacity: number;
  /** False for a policy that never drops rows (it refuses what exceeds capacity). */
  readonly evicts: boolean;
  /** Disjoint ranges in ascending order; [] when the rows fit. Throws CONTEXT_OVERFLOW when no room can be made. */
  evictions(length: number, incoming: number): Eviction[];
}

function positiveInteger(value: unknown, what: string, min = 1): number {
  if (!Number.isSafeInteger(value) || (value as number) < min) {
    throw new OmniError('BAD_INPUT', `${what} is ${JSON.stringify(value)}; it must be an integer ≥ ${min}`);
  }
  return value as number;
}

class PlainPolicy implements EvictionPolicy {
  readonly evicts = false;
  constructor(readonly capacity: number) {}

  evictions(length: number, incoming: number): Eviction[] {
    if (length + incoming > this.capacity) {
      throw new OmniError(
        'CONTEXT_OVERFLOW',
        `the KV cache holds ${length} of ${this.capacity} rows and ${incoming} more do not fit; start a new session, raise the capacity, or use the sinkWindow policy`,
      );
    }
    return [];
  }
}

class SinkWindowPolicy implements EvictionPolicy {
  readonly evicts = true;
  readonly capacity: number;
  constructor(readonly sink: number, readonly window: number, readonly evictStep: number) {
    this.capacity = sink + window;
  }

  evictions(length: number, incoming: number): Eviction[] {
    if (length + incoming <= this.capacity) return [];
    if (incoming > this.window) {
      throw new OmniError('CONTEXT_OVERFLOW', `a chunk of ${incoming} rows is larger than the attention window of ${this.window}; send smaller chunks`);
    }
    const needed = length + incoming - this.capacity;
    // Never evict into the sinks: at most every window row goes.
    const count = Math.min(Math.max(needed, this.evictStep), length - this.sink);
    return [{ start: this.sink, count }];
  }
}

export function createEvictionPolicy(policy: CachePolicy): EvictionPolicy {
  const storage = policy?.storage;
  if (storage !== undefined && storage !== 'f32' && storage !== 'int8') {
    throw new OmniError('BAD_INPUT', `cache storage ${JSON.stringify(storage)}: use 'f32' or 'int8'`);
  }
  switch (policy?.kind) {
    case 'plain':
      return new PlainPolicy(positiveInteger(policy.capacity, 'plain cache capacity'));
    case 'sinkWindow': {
      const sink = positiveInteger(policy.sink, 'sinkWindow sink', 0);
      const window = positiveInteger(policy.window, 'sinkWindow window');
      const evictStep = policy.evictStep === undefined ? Math.ceil(window / 16) : positiveInteger(policy.evictStep, 'sinkWindow evictStep');
      if (evictStep > window) throw new OmniError('BAD_INPUT', `sinkWindow evictStep ${evictStep} exceeds the window ${window}`);
      return new SinkWindowPolicy(sink, window, evictStep);
    }
    default:
      throw new OmniError('BAD_INPUT', `unknown cache policy ${JSON.stringify(policy)}; use { kind: 'plain', capacity } or { kind: 'sinkWindow', sink, window }`);
  }
}

/** One layer's keys and values as the cache stores them. */
interface CacheLayer {
  readonly byteSize: number;
  /** Rows [row, row + n) ← k, v [n, kvHeads, headDim]. */
  write(k: Tensor, v: Tensor, row: number): void;
  /** attention of q over the layer's rows. */
  attend(q: Tensor, opts: AttentionOptions, out: Tensor): void;
  /** Rows [from, from + count) move to `to` (< from), keys turned back by `shift` positions. */
  move(from: number, to: number, count: number, shift: number): void;
  /** Rows [row, row + count) on the host, as f32. */
  read(row: number, count: number): Promise<{ keys: Float32Array; values: Float32Array }>;
  dispose(): void;
}

/** Everything a layer shares with its cache: the backend, row geometry, rotary, and moves' scratch. */
interface LayerContext {
  backend: Backend;
  capacity: number;
  kvHeads: number;
  headDim: number;
  rope: RopeSpec;
  /**
   * Tensors an eviction's moves share (every layer moves the same rows, by the same shift), made
   * on first use and freed when the eviction is done: positions [3, count] all −shift for the
   * rotation of `count` moved keys, and (int8) f32 rows [count, kvHeads, headDim] for keys and values.
   */
  turn(count: number, shift: number): Tensor;
  movingRows(count: number): { keys: Tensor; values: Tensor };
}

class F32Layer implements CacheLayer {
  readonly keys: Tensor;
  readonly values: Tensor;
  readonly byteSize: number;
  readonly #rowSize: number;

  /** `scratch`: [capacity, kvHeads, headDim], shared by the cache's layers, where moved rows wait so no copy overlaps itself. */
  constructor(readonly c: LayerContext, readonly scratch: Tensor) {
    const rows = [c.capacity, c.kvHeads, c.headDim];
    this.keys = c.backend.empty(rows);
    this.values = c.backend.empty(rows);
    this.#rowSize = c.kvHeads * c.headDim;
    this.byteSize = 2 * c.capacity * this.#rowSize * 4;
  }

  write(k: Tensor, v: Tensor, row: number): void {
    this.c.backend.copy(k, this.keys, 0, row * this.#rowSize, k.size);
    this.c.backend.copy(v, this.values, 0, row * this.#rowSize, v.size);
  }

  attend(q: Tensor, opts: AttentionOptions, out: Tensor): void {
    this.c.backend.attention(q, this.keys, this.values, opts, out);
  }

  move(from: number, to: number, count: number, shift: number): void {
    const b = this.c.backend, n = count * this.#rowSize;
    b.copy(this.keys, this.scratch, from * this.#rowSize, 0, n);
    // The scratch holds capacity rows; those past `count` turn too and are never read.
    if (shift > 0) b.rotary(this.scratch, this.c.turn(this.c.capacity, shift), this.c.rope, this.scratch);
    b.copy(this.scratch, this.keys, 0, to * this.#rowSize, n);
    b.copy(this.values, this.scratch, from * this.#rowSize, 0, n);
    b.copy(this.scratch, this.values, 0, to * this.#rowSize, n);
  }

  async read(row: number, count: number): Promise<{ keys: Float32Array; values: Float32Array }> {
    const range = { offset: row * this.#rowSize, count: count * this.#rowSize };
    return { keys: await this.c.backend.read(this.keys, range) as Float32Array, values: await this.c.backend.read(this.values, range) as Float32Array };
  }

  dispose(): void {
    this.c.backend.dispose(this.keys);
    this.c.backend.dispose(this.values);
  }
}

class Int8Layer implements CacheLayer {
  readonly rows: KV8;
  readonly byteSize: number;

  constructor(readonly c: LayerContext) {
    this.rows = c.backend.kv8!.create(c.capacity, c.kvHeads, c.headDim);
    this.byteSize = this.rows.byteSize;
  }

  write(k: Tensor, v: Tensor, row: number): void {
    this.c.backend.kv8!.write(k, v, this.rows, row);
  }

  attend(q: Tensor, opts: AttentionOptions, out: Tensor): void {
    this.c.backend.kv8!.attention(q, this.rows, opts, out);
  }

  move(from: number, to: number, count: number, shift: number): void {
    const b = this.c.backend, { keys, values } = this.c.movingRows(count);
    b.kv8!.read(this.rows, from, keys, values);
    if (shift > 0) b.rotary(keys, this.c.turn(count, shift), this.c.rope, keys);
    b.kv8!.write(keys, values, this.rows, to);
  }

  async read(row: number, count: number): Promise<{ keys: Float32Array; values: Float32Array }> {
    const b = this.c.backend;
    const k = b.empty([count, this.c.kvHeads, this.c.headDim]), v = b.empty([count, this.c.kvHeads, this.c.headDim]);
    try {
      b.kv8!.read(this.rows, row, k, v);
      return { keys: await b.read(k) as Float32Array, values: await b.read(v) as Float32Array };
    } finally {
      b.dispose(k);
      b.dispose(v);
    }
  }

  dispose(): void {
    this.c.backend.kv8!.dispose(this.rows);
  }
}

export class KVCache {
  readonly capacity: number;
  readonly storage: CacheStorage;
  /** Layers. */
  readonly layers: number;
  /** Elements of one row (kvHeads · headDim). */
  readonly rowSize: number;
  readonly policy: EvictionPolicy;
  /**
   * Host mirror of each row's rotary position as its key is rotated now,
   * stream-major `[3, capacity]` (T, H, W); evictions need the positions
   * around a gap to size the shift.
   */
  readonly rowPositions: Int32Array;
  /** Each row's index among all rows ever committed (what `rewind` counts in). */
  readonly #rowSequence: Int32Array;
  readonly #backend: Backend;
  readonly #layers: CacheLayer[];
  /** F32Layer's shared scratch (f32 storage only). */
  readonly #scratch: Tensor | null;
  /** The tensors the current eviction's moves share, by name (LayerContext.turn, movingRows). */
  readonly #moveTensors = new Map<string, Tensor>();
  #length = 0;
  #appended = 0;
  #positionShift = 0;
  #disposed = false;

  constructor(backend: Backend, shape: KVCacheShape, policy: CachePolicy, rope: RopeSpec) {
    this.#backend = backend;
    this.policy = createEvictionPolicy(policy);
    this.capacity = this.policy.capacity;
    const storage = policy.storage ?? 'f32';
    if (storage === 'int8' && !backend.kv8) {
      throw new OmniError('UNSUPPORTED_CONFIG', `an int8 KV cache runs on the wasm backend; the ${backend.info.kind} backend keeps f32 caches`);
    }
    this.storage = storage;
    this.layers = positiveInteger(shape.layers, 'cache layers');
    const kvHeads = positiveInteger(shape.kvHeads, 'cache kvHeads');
    const headDim = positiveInteger(shape.headDim, 'cache headDim');
    this.rowSize = kvHeads * headDim;
    const shared = (name: string, make: () => Tensor): Tensor => {
      let t = this.#moveTensors.get(name);
      if (!t) this.#moveTensors.set(name, (t = make()));
      return t;
    };
    const context: LayerContext = {
      backend, capacity: this.capacity, kvHeads, headDim, rope,
      turn: (count, shift) => shared(`turn ${count}`, () => backend.tensor(new Int32Array(3 * count).fill(-shift), [3, count])),
      movingRows: (count) => ({
        keys: shared(`keys ${count}`, () => backend.empty([count, kvHeads, headDim])),
        values: shared(`values ${count}`, () => backend.empty([count, kvHeads, headDim])),
      }),
    };
    this.#scratch = storage === 'f32' ? backend.empty([this.capacity, kvHeads, headDim]) : null;
    const scratch = this.#scratch;
    this.#layers = Array.from({ length: this.layers }, () => (scratch ? new F32Layer(context, scratch) : new Int8Layer(context)));
    this.rowPositions = new Int32Array(3 * this.capacity);
    this.#rowSequence = new Int32Array(this.capacity);
  }

  /** Rows filled. */
  get length(): number {
    return this.#length;
  }

  /**
   * How far evictions have pulled positions down: a token whose absolute
   * position (as `get_rope_index` counts it, fact sheet §5.2) is p is rotated
   * by p − positionShift.
   */
  get positionShift(): number {
    return this.#positionShift;
  }

  /** Device bytes held; constant for the cache's life. */
  get byteSize(): number {
    return this.#layers.reduce((n, layer) => n + layer.byteSize, this.#scratch ? this.#scratch.size * 4 : 0);
  }

  /**
   * Makes room for `rows` new rows at the end, evicting as the policy says,
   * and returns the row they will occupy. Nothing is appended until `commit`.
   */
  async reserve(rows: number): Promise<number> {
    this.#checkLive();
    positiveInteger(rows, 'rows to reserve');
    const evictions = this.policy.evictions(this.#length, rows);
    // Back to front, so the row indices of earlier ranges stay valid.
    for (let i = evictions.length - 1; i >= 0; i--) await this.#evict(evictions[i]);
    return this.#length;
  }

  /** Copies one layer's new keys and values `[rows, kvHeads, headDim]` into rows [start, start + rows). */
  write(layer: number, k: Tensor, v: Tensor, start: number): void {
    this.#checkLive();
    const count = k?.size;
    if (!(layer >= 0 && layer < this.layers) || v?.size !== count || count % this.rowSize !== 0 || !(start >= 0 && start * this.rowSize + count <= this.capacity * this.rowSize)) {
      throw new OmniError('BAD_INPUT', `cache write: layer ${layer} of ${this.layers}, ${count} elements at row ${start}; keys and values must be whole rows of ${this.rowSize} inside the ${this.capacity}-row cache`);
    }
    this.#layers[layer].write(k, v, start);
  }

  /** Attention of q `[T, heads, headDim]` over one layer's rows (GQA: query heads share the cache's heads) into out. */
  attend(layer: number, q: Tensor, opts: AttentionOptions, out: Tensor): void {
    this.#checkLive();
    if (!(layer >= 0 && layer < this.layers)) throw new OmniError('BAD_INPUT', `cache attend: layer ${layer} of ${this.layers}`);
    this.#layers[layer].attend(q, opts, out);
  }

  /** One layer's rows [row, row + count) on the host, as f32 `[count, kvHeads, headDim]` (int8: dequantized). */
  async readRows(layer: number, row: number, count: number): Promise<{ keys: Float32Array; values: Float32Array }> {
    this.#checkLive();
    if (!(layer >= 0 && layer < this.layers) || !(Number.isSafeInteger(row) && Number.isSafeInteger(count) && row >= 0 && count > 0 && row + count <= this.capacity)) {
      throw new OmniError('BAD_INPUT', `cache readRows: layer ${layer} of ${this.layers}, rows [${row}, ${row + count}) of ${this.capacity}`);
    }
    return this.#layers[layer].read(row, count);
  }

  /**
   * Appends the rows reserved and written, with their rotary positions
   * (stream-major `[3, rows]`, already shifted).
   */
  commit(positions: Int32Array): void {
    this.#checkLive();
    if (!(positions instanceof Int32Array) || positions.length === 0 || positions.length % 3 !== 0) {
      throw new OmniError('BAD_INPUT', 'cache commit needs the rows\' positions as an Int32Array [3 · rows] (stream-major)');
    }
    const rows = positions.length / 3;
    if (this.#length + rows > this.capacity) throw new OmniError('INTERNAL', `commit of ${rows} rows overruns the cache (${this.#length} of ${this.capacity})`);
    for (let s = 0; s < 3; s++) this.rowPositions.set(positions.subarray(s * rows, (s + 1) * rows), s * this.capacity + this.#length);
    for (let r = 0; r < rows; r++) this.#rowSequence[this.#length + r] = this.#appended + r;
    this.#length += rows;
    this.#appended += rows;
  }

  /** Rows committed over the cache's life, evicted ones included. */
  get appended(): number {
    return this.#appended;
  }

  /**
   * Forgets every row committed after the first `appended` (a withdrawn turn, a rejected
   * draft): they are never read again and the next reserve writes over them. Returns false
   * and changes nothing when some of those rows were evicted already (the turn outgrew the
   * window): what came before them is gone, so the cache cannot be put back.
   */
  rewind(appended: number): boolean {
    this.#checkLive();
    if (!(Number.isSafeInteger(appended) && appended >= 0 && appended <= this.#appended)) {
      throw new OmniError('BAD_INPUT', `cache rewind to ${appended} rows appended: it must be an integer in [0, ${this.#appended}]`);
    }
    const drop = this.#appended - appended;
    // Rows keep their order through evictions, so the rows to drop are a suffix, complete or not.
    const first = this.#length - drop;
    if (drop > 0 && (first < 0 || this.#rowSequence[first] !== appended)) return false;
    this.#length = first;
    this.#appended = appended;
    return true;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const layer of this.#layers) layer.dispose();
    if (this.#scratch) this.#backend.dispose(this.#scratch);
  }

  #checkLive(): void {
    if (this.#disposed) throw new OmniError('BAD_INPUT', 'this KV cache was disposed');
  }

  /** Drops rows [start, start + count): the rows behind move down and their keys turn back by the closed gap. */
  async #evict({ start, count }: Eviction): Promise<void> {
    const end = start + count;
    if (!(Number.isSafeInteger(start) && count > 0 && start >= 0 && end <= this.#length)) {
      throw new OmniError('INTERNAL', `eviction [${start}, ${end}) outside the ${this.#length} cached rows`);
    }
    const moved = this.#length - end;
    const shift = moved > 0 ? this.#gapAt(start, end) : 0;
    if (moved > 0) {
      for (const layer of this.#layers) layer.move(end, start, moved, shift);
      if (this.#moveTensors.size > 0) {
        // They must outlive the queued work that reads them.
        await this.#backend.sync();
        for (const t of this.#moveTensors.values()) this.#backend.dispose(t);
        this.#moveTensors.clear();
      }
      for (let s = 0; s < 3; s++) {
        const row = this.rowPositions.subarray(s * this.capacity, (s + 1) * this.capacity);
        row.copyWithin(start, end, this.#length);
        for (let r = start; r < start + moved; r++) row[r] -= shift;
      }
      this.#rowSequence.copyWithin(start, end, this.#length);
    }
    this.#length -= count;
    this.#positionShift += shift;
  }

  /**
   * The position gap a drop of rows [start, end) leaves: the first row after
   * it moves to one past the largest position before it. Within an image or
   * video block the streams are not ordered, so a gap can be ≤ 0; then
   * nothing shifts.
   */
  #gapAt(start: number, end: number): number {
    let before = -1;
    for (let s = 0; s < 3; s++) {
      for (let r = 0; r < start; r++) before = Math.max(before, this.rowPositions[s * this.capacity + r]);
    }
    let after = Infinity;
    for (let s = 0; s < 3; s++) after = Math.min(after, this.rowPositions[s * this.capacity + end]);
    return Math.max(0, after - (before + 1));
  }
}
