/**
 * Next-token choice over a logits row read back from the device (host JS is
 * fine here: one row per token). Processing order follows HF generate:
 * repetition penalty → temperature → top-k → top-p, then a draw from the
 * softmax of what is left. Every buffer is allocated once per sampler.
 */
import { OmniError } from '@omniweb/core';

export interface SamplingOptions {
  /** 0 (default) decodes greedily; > 0 samples from softmax(logits / temperature). */
  temperature?: number;
  /** Keep the k largest logits (ties at the k-th value kept, as HF does); 0 = off. */
  topK?: number;
  /** Keep the smallest top set whose probability reaches p; 1 = off. */
  topP?: number;
  /** HF repetition penalty over every id seen (prompt and output): positive logits ÷ r, negative × r. 1 = off. */
  repetitionPenalty?: number;
  /** Seed of the sampler's random stream; the same seed gives the same tokens. */
  seed?: number;
}

/** Small, fast, seedable PRNG (mulberry32): uniform floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  if (!Number.isSafeInteger(seed)) throw new OmniError('BAD_INPUT', `seed ${seed} must be an integer`);
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  };
}

/** The distinct token ids seen so far (the repetition penalty's set). */
export class TokenHistory {
  readonly #seen: Uint8Array;
  readonly #ids: Int32Array;
  #count = 0;

  constructor(readonly vocab: number) {
    if (!Number.isSafeInteger(vocab) || vocab < 1) throw new OmniError('BAD_INPUT', `vocabulary size ${vocab} must be an integer ≥ 1`);
    this.#seen = new Uint8Array(vocab);
    this.#ids = new Int32Array(vocab);
  }

  add(id: number): void {
    if (!(Number.isSafeInteger(id) && id >= 0 && id < this.vocab)) throw new OmniError('BAD_INPUT', `token id ${id} is outside the vocabulary [0, ${this.vocab})`);
    if (this.#seen[id]) return;
    this.#seen[id] = 1;
    this.#ids[this.#count++] = id;
  }

  addAll(ids: ArrayLike<number>): void {
    for (let i = 0; i < ids.length; i++) this.add(ids[i]);
  }

  get ids(): Int32Array {
    return this.#ids.subarray(0, this.#count);
  }

  /** Keeps the first `count` distinct ids (in the order first seen): the history as it was then. */
  truncate(count: number): void {
    if (!(Number.isSafeInteger(count) && count >= 0 && count <= this.#count)) {
      throw new OmniError('BAD_INPUT', `token history truncate to ${count}: it must be an integer in [0, ${this.#count}]`);
    }
    for (let i = count; i < this.#count; i++) this.#seen[this.#ids[i]] = 0;
    this.#count = count;
  }
}

/** The index of the largest value (the first of equals). */
function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

function checkNumber(value: number | undefined, fallback: number, ok: (v: number) => boolean, what: string): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !ok(v)) throw new OmniError('BAD_INPUT', `sampling ${what} is ${JSON.stringify(value)}; ${what === 'topK' ? 'it must be an integer ≥ 0' : 'see SamplingOptions for its range'}`);
  return v;
}

export class Sampler {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly repetitionPenalty: number;
  readonly #random: () => number;
  readonly #work: Float32Array;
  readonly #candidates: Int32Array;
  readonly #heap: Float32Array;

  constructor(readonly vocab: number, options: SamplingOptions = {}) {
    if (!Number.isSafeInteger(vocab) || vocab < 1) throw new OmniError('BAD_INPUT', `vocabulary size ${vocab} must be an integer ≥ 1`);
    this.temperature = checkNumber(options.temperature, 0, (v) => Number.isFinite(v) && v >= 0, 'temperature');
    this.topK = checkNumber(options.topK, 0, (v) => Number.isSafeInteger(v) && v >= 0, 'topK');
    this.topP = checkNumber(options.topP, 1, (v) => v > 0 && v <= 1, 'topP (0 < p ≤ 1)');
    this.repetitionPenalty = checkNumber(options.repetitionPenalty, 1, (v) => Number.isFinite(v) && v > 0, 'repetitionPenalty (> 0)');
    const seed = checkNumber(options.seed, Math.floor(Math.random() * 2 ** 32), (v) => Number.isSafeInteger(v), 'seed (an integer)');
    this.#random = seededRandom(seed);
    this.#work = new Float32Array(vocab);
    this.#candidates = new Int32Array(vocab);
    this.#heap = new Float32Array(this.topK > 0 && this.topK < vocab ? this.topK : 0);
  }

  get greedy(): boolean {
    return this.temperature === 0;
  }

  /** The next token id for a logits row (left untouched); `history` feeds the repetition penalty. */
  pick(logits: Float32Array, history: TokenHistory | null): number {
    if (logits.length !== this.vocab) throw new OmniError('BAD_INPUT', `a logits row of ${logits.length} values for a vocabulary of ${this.vocab}`);
    const penalized = history !== null && this.repetitionPenalty !== 1;
    // Plain greedy reads the row as it is: no copy per decode step.
    if (this.greedy && !penalized) return argmax(logits);
    const w = this.#work;
    w.set(logits);
    if (penalized) {
      const r = this.repetitionPenalty;
      for (const id of history.ids) w[id] = w[id] > 0 ? w[id] / r : w[id] * r;
    }
    if (this.greedy) return argmax(w);
    const inv = 1 / this.temperature;
    for (let i = 0; i < w.length; i++) w[i] *= inv;
    const n = this.#selectTopK();
    if (n > 0) return this.#drawFrom(n, null);
    if (this.topP === 1) return this.#drawFromAll();
    const nucleus = this.#nucleusCandidates();
    return this.#drawFrom(nucleus.count, nucleus.total);
  }

  /** Candidates ≥ the k-th largest value into #candidates; 0 when top-k is off. */
  #selectTopK(): number {
    const k = this.#heap.length;
    if (k === 0) return 0;
    const w = this.#work;
    const heap = this.#heap; // min-heap of the k largest values seen
    for (let i = 0; i < k; i++) {
      heap[i] = w[i];
      for (let c = i; c > 0;) {
        const parent = (c - 1) >> 1;
        if (heap[parent] <= heap[c]) break;
        [heap[parent], heap[c]] = [heap[c], heap[parent]];
        c = parent;
      }
    }
    for (let i = k; i < w.length; i++) {
      if (w[i] <= heap[0]) continue;
      heap[0] = w[i];
      for (let c = 0; ;) {
        const l = 2 * c + 1;
        const r = l + 1;
        let m = c;
        if (l < k && heap[l] < heap[m]) m = l;
        if (r < k && heap[r] < heap[m]) m = r;
        if (m === c) break;
        [heap[m], heap[c]] = [heap[c], heap[m]];
        c = m;
      }
    }
    const threshold = heap[0];
    let n = 0;
    for (let i = 0; i < w.length; i++) if (w[i] >= threshold) this.#candidates[n++] = i;
    return n;
  }

  /**
   * Without top-k, top-p needs only the head of the sorted distribution:
   * take every token with probability ≥ τ; once they hold ≥ p of the mass
   * the nucleus lies among them (lower τ and retry otherwise).
   */
  #nucleusCandidates(): { count: number; total: number } {
    const w = this.#work;
    let max = -Infinity;
    for (let i = 0; i < w.length; i++) max = Math.max(max, w[i]);
    let total = 0;
    for (let i = 0; i < w.length; i++) total += Math.exp(w[i] - max);
    for (let tau = 1e-2; ; tau *= 1e-2) {
      const floor = max + Math.log(tau * total);
      let n = 0;
      let mass = 0;
      for (let i = 0; i < w.length; i++) {
        if (w[i] >= floor || tau < 1e-30) {
          this.#candidates[n++] = i;
          mass += Math.exp(w[i] - max);
        }
      }
      if (mass >= this.topP * total || tau < 1e-30) return { count: n, total };
    }
  }

  /**
   * Softmax over candidates [0, n), cut to the top-p nucleus, then one draw.
   * `fullTotal`: the softmax normaliser when the candidates are only the head
   * of the whole distribution (relative to the same maximum); null when the
   * candidates are the distribution (after top-k).
   */
  #drawFrom(n: number, fullTotal: number | null): number {
    const w = this.#work;
    const c = this.#candidates.subarray(0, n);
    c.sort((a, b) => w[b] - w[a] || a - b);
    const max = w[c[0]];
    let total = fullTotal ?? 0;
    if (fullTotal === null) for (let i = 0; i < n; i++) total += Math.exp(w[c[i]] - max);
    // HF top-p drops a token when the mass ranked above it already reaches p; the top one always stays.
    let kept = n;
    if (this.topP < 1) {
      let above = 0;
      for (let i = 0; i < n; i++) {
        if (above / total >= this.topP) {
          kept = i;
          break;
        }
        above += Math.exp(w[c[i]] - max);
      }
    }
    let keptMass = 0;
    for (let i = 0; i < kept; i++) keptMass += Math.exp(w[c[i]] - max);
    let u = this.#random() * keptMass;
    for (let i = 0; i < kept; i++) {
      u -= Math.exp(w[c[i]] - max);
      if (u < 0) return c[i];
    }
    return c[kept - 1];
  }

  #drawFromAll(): number {
    const w = this.#work;
    let max = -Infinity;
    for (let i = 0; i < w.length; i++) max = Math.max(max, w[i]);
    let total = 0;
    for (let i = 0; i < w.length; i++) total += Math.exp(w[i] - max);
    let u = this.#random() * total;
    let last = 0;
    for (let i = 0; i < w.length; i++) {
      const p = Math.exp(w[i] - max);
      if (p === 0) continue;
      last = i;
      u -= p;
      if (u < 0) return i;
    }
    return last;
  }
}
