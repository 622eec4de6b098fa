/**
 * The Thinker benchmark proper, the same in Node and in a page: prefill and decode speed of
 * a loaded Thinker through its public API (ThinkerSession), and the work one decoded token
 * costs (weight and KV bytes read, FLOPs), from which the run's roofline gives the floors.
 */
import type { Backend, Weight } from '@omniweb/core';
import { ThinkerSession, type CacheStorage, type Thinker } from '@omniweb/thinker';
import { median } from '../lib/report.js';

/**
 * Untimed decode steps before the timed ones, ours and llama.cpp's alike. V8 runs a wasm
 * function in its baseline tier until it has run enough to be optimized (a 1024-key decode
 * attention took 260 µs a call for its first 41 calls, then 48): a freshly loaded 0.5B q4
 * Thinker (Node 26, 2 threads) ran its first 25 steps at 8.6–15 ms and then held 7.6–7.8,
 * and with 2 warm-up steps the median of the next 10 read 10.5 ms.
 */
export const DECODE_WARMUP_TOKENS = 24;

export interface ThinkerBenchOptions {
  /** Prompt length of the prefill measurement. */
  prefillTokens: number;
  /** Largest prefill pass (ThinkerSession maxChunkRows). */
  maxChunkRows?: number;
  /** Cache rows filled before decoding (0: decoding right after a 1-token prompt). */
  contexts: number[];
  /** Tokens timed per context, after `warmupTokens` untimed ones. */
  decodeTokens: number;
  warmupTokens: number;
  /** Skip the prefill (slow devices). */
  skipPrefill?: boolean;
  /** How the sessions' KV caches keep rows (default f32). */
  kvCache?: CacheStorage;
}

export interface DecodeResult {
  context: number;
  /** Steps timed. */
  tokens: number;
  /** Median step time, and its rate. */
  ms: number;
  tokPerS: number;
  /** Tokens over the whole timed span. */
  meanTokPerS: number;
}

export interface ThinkerResult {
  prefill: { tokens: number; ms: number; tokPerS: number } | null;
  decode: DecodeResult[];
}

/** Deterministic ordinary-text ids (below Qwen's first special token, 151643). */
export function promptIds(count: number, seed = 7): Int32Array {
  const ids = new Int32Array(count);
  let s = seed >>> 0;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    ids[i] = 1000 + (s % 100_000);
  }
  return ids;
}

function randomRows(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 2;
  }
  return out;
}

/**
 * Fills the first `rows` rows of a session's cache with random keys and values (the cost
 * of attention does not depend on them), as if that many tokens had been prefilled.
 */
export async function fillCache(thinker: Thinker, session: ThinkerSession, rows: number): Promise<void> {
  const backend = thinker.backend, cache = session.cache;
  const start = await cache.reserve(rows);
  const { kvHeads, headDim } = thinker.config.text;
  const shape = [rows, kvHeads, headDim];
  const k = backend.tensor(randomRows(rows * cache.rowSize, 11), shape);
  const v = backend.tensor(randomRows(rows * cache.rowSize, 13), shape);
  for (let l = 0; l < cache.layers; l++) cache.write(l, k, v, start);
  await backend.sync();
  backend.dispose(k);
  backend.dispose(v);
  const positions = new Int32Array(3 * rows);
  for (let s = 0; s < 3; s++) for (let t = 0; t < rows; t++) positions[s * rows + t] = t;
  cache.commit(positions);
}

/** Runs the prefill and the decode measurements on one loaded Thinker. */
export async function benchThinker(
  thinker: Thinker, opts: ThinkerBenchOptions, now: () => number = () => performance.now(),
  log: (line: string) => void = () => {},
): Promise<ThinkerResult> {
  const backend = thinker.backend;
  let prefill: ThinkerResult['prefill'] = null;
  if (!opts.skipPrefill) {
    const session = new ThinkerSession(thinker, {
      cache: { kind: 'plain', capacity: opts.prefillTokens + 8, storage: opts.kvCache }, maxChunkRows: opts.maxChunkRows,
    });
    try {
      // Warm-up pass: first touch of the weights and of the pass-sized run state.
      await session.prefill({ ids: promptIds(8, 3) });
      const ids = promptIds(opts.prefillTokens);
      const other = new ThinkerSession(thinker, {
        cache: { kind: 'plain', capacity: opts.prefillTokens, storage: opts.kvCache }, maxChunkRows: opts.maxChunkRows,
      });
      try {
        const t0 = now();
        await other.prefill({ ids });
        await backend.sync();
        const ms = now() - t0;
        prefill = { tokens: opts.prefillTokens, ms, tokPerS: (opts.prefillTokens * 1000) / ms };
        log(`  prefill ${opts.prefillTokens}: ${ms.toFixed(0)} ms (${prefill.tokPerS.toFixed(1)} tok/s)`);
      } finally {
        other.dispose();
      }
    } finally {
      session.dispose();
    }
  }
  const decode: DecodeResult[] = [];
  for (const context of opts.contexts) {
    const total = opts.warmupTokens + opts.decodeTokens;
    const session = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: context + total + 2, storage: opts.kvCache } });
    try {
      if (context > 0) await fillCache(thinker, session, context);
      await session.prefill({ ids: promptIds(1, context + 1) });
      // Event n > 0 comes after one forward pass; the first comes from the prefill's logits.
      const stamps: number[] = [];
      for await (const _event of session.generate({ maxNewTokens: total + 1, stopIds: [] })) {
        void _event;
        stamps.push(now());
      }
      // The median step, not the mean: on shared cores a step that lost its core for a while
      // says nothing about the model.
      const steps = stamps.slice(opts.warmupTokens + 1).map((t, i) => t - stamps[opts.warmupTokens + i]);
      const ms = median(steps);
      const meanMs = (stamps[total] - stamps[opts.warmupTokens]) / opts.decodeTokens;
      const result = { context, tokens: opts.decodeTokens, ms, tokPerS: 1000 / ms, meanTokPerS: 1000 / meanMs };
      decode.push(result);
      log(`  decode @${context}: ${ms.toFixed(1)} ms/token median (${result.tokPerS.toFixed(2)} tok/s; mean ${result.meanTokPerS.toFixed(2)})`);
    } finally {
      session.dispose();
    }
  }
  return { prefill, decode };
}

/** What one token costs the model: the inputs of the roofline floors. */
export interface TokenWork {
  /** Bytes of every weight a decode step reads (matrices as stored on the device, norms, biases, one embedding row). */
  weightBytes: number;
  /** KV-cache bytes read per decoded token per cached row (keys + values, all layers). */
  kvBytesPerRow: number;
  /** Multiply-add FLOPs of the matrices per token (2 per weight element, lm_head included). */
  matrixFlops: number;
  /** Attention FLOPs per token per cached row (q·k and p·v, all heads and layers). */
  attentionFlopsPerRow: number;
  /** FLOPs of the lm_head alone (run once per prefill pass, on the last row only). */
  lmHeadFlops: number;
}

/** KV bytes of one cached row (all layers): f32 keys and values, or int8 codes (head size padded to 16) and two f32 scales per head. */
export function kvBytesPerRow(t: Thinker['config']['text'], storage: CacheStorage = 'f32'): number {
  const perHead = storage === 'int8' ? 2 * Math.ceil(t.headDim / 16) * 16 + 8 : 2 * t.headDim * 4;
  return t.layers * t.kvHeads * perHead;
}

export function tokenWork(thinker: Thinker, storage: CacheStorage = 'f32'): TokenWork {
  const t = thinker.config.text;
  const w = thinker.weights;
  let weightBytes = 0;
  let matrixFlops = 0;
  const matrix = (m: Weight) => { weightBytes += m.byteSize; matrixFlops += 2 * m.rows * m.cols; };
  for (const layer of w.layers) {
    for (const m of [layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down]) matrix(m);
    weightBytes += 4 * (2 * t.hidden + t.heads * t.headDim + 2 * t.kvHeads * t.headDim); // norms and biases
  }
  matrix(w.lmHead);
  weightBytes += 4 * t.hidden; // final norm
  weightBytes += w.embedTokens.byteSize / t.vocab; // one embedding row
  return {
    weightBytes,
    kvBytesPerRow: kvBytesPerRow(t, storage),
    matrixFlops,
    attentionFlopsPerRow: 4 * t.layers * t.heads * t.headDim,
    lmHeadFlops: 2 * w.lmHead.rows * w.lmHead.cols,
  };
}

/** Decode floors at a context: memory (bytes ÷ read bandwidth) and compute (FLOPs ÷ SIMD peak), in ms. */
export function decodeFloors(work: TokenWork, context: number, readGBps: number, peakGflops: number) {
  const bytes = work.weightBytes + work.kvBytesPerRow * (context + 1);
  const flops = work.matrixFlops + work.attentionFlopsPerRow * (context + 1);
  return { bytes, flops, memoryMs: bytes / readGBps / 1e6, computeMs: flops / peakGflops / 1e6 };
}

/** Prefill floors for a prompt of `tokens` in passes of `passRows`. */
export function prefillFloors(work: TokenWork, tokens: number, passRows: number, readGBps: number, peakGflops: number) {
  const passes = Math.ceil(tokens / passRows);
  const layerFlops = work.matrixFlops - work.lmHeadFlops;
  const flops = layerFlops * tokens + work.lmHeadFlops * passes + (work.attentionFlopsPerRow * tokens * (tokens + 1)) / 2;
  const bytes = work.weightBytes * passes;
  return { bytes, flops, memoryMs: bytes / readGBps / 1e6, computeMs: flops / peakGflops / 1e6 };
}
