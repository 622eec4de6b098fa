/**
 * The browser side of the Thinker benchmark (a cross-origin-isolated page served by
 * e2e/server.ts): our Thinker on wasm (threads) and WebGPU, the machine's floors measured
 * in the page, and llama.cpp through @wllama/wllama on the GGUF conversion of the same
 * weights, loaded side by side and measured in alternation. Playwright calls
 * `window.thinkerBench`; every call loads what it needs and frees it before returning.
 */
import {
  bytesSource, createWasmBackend, createWebGPUBackend, loadOmniConfig, openCheckpoint, relaxedDotAvailable, type Backend, type BackendInfo, type QuantizedActivations, type WasmSimd,
  type Checkpoint, type CheckpointFiles, type ThinkerConfig, type WeightFormat,
} from '@omniweb/core';
import { Thinker, ThinkerSession } from '@omniweb/thinker';
import { Wllama, type RawCompletionChunk, type ResultTimings } from '@wllama/wllama';
import { median } from '../lib/report.js';
import { measureComputePeaks, type ComputePeaks } from '../lib/computePeak.js';
import { measureRoofline, type Roofline } from '../lib/roofline.js';
import { CachedSource } from './cachedSource.js';
import { benchThinker, tokenWork, type ThinkerBenchOptions, type ThinkerResult, type TokenWork } from './suite.js';

export interface OursResult { info: BackendInfo; loadMs: number; result: ThinkerResult; work: TokenWork }
export interface PeerRun {
  weights: string;
  threads: number;
  multithread: boolean;
  loadMs: number;
  /** llama-server's own prompt-processing rate. */
  prefill: { tokens: number; tokPerS: number } | null;
  /** tokPerS: the median streamed step, timed in the page as ours is; meanTokPerS: llama-server's own generation rate. */
  decode: { context: number; tokens: number; tokPerS: number; meanTokPerS: number; streamedTokens: number }[];
  metadata: Record<string, string>;
}
export interface PairOptions {
  prefillTokens: number;
  decodeTokens: number;
  warmupTokens: number;
  /** Each round runs both sides in turn (who goes first alternates); the best round of each side is kept. */
  rounds: number;
}
export interface GreedyCheck { ours: string; peer: string; identical: boolean; commonPrefixChars: number; ids: number[] }
export interface PairResult {
  ours: OursResult;
  peer: PeerRun;
  rounds: { ours: ThinkerResult; peer: PeerRun }[];
  /** f32 pairs: both sides' greedy continuation of the same prompt. */
  check: GreedyCheck | null;
}

export interface ThinkerPageApi {
  isolated(): boolean;
  floors(threads: number[]): Promise<{ roofline: Roofline; peaks: ComputePeaks }>;
  /** `wasm` picks the wasm build and GEMV activations (default: the backend's defaults). */
  ours(kind: 'wasm' | 'webgpu', format: WeightFormat, threads: number, opts: ThinkerBenchOptions, wasm?: WasmChoice): Promise<OursResult>;
  /** Our Thinker and llama.cpp loaded side by side and measured in alternation, so both see the same machine load. */
  pair(format: WeightFormat, ggufFile: string, threads: number, opts: PairOptions): Promise<PairResult>;
}

const now = () => performance.now();
let opened: Promise<{ checkpoint: Checkpoint; config: ThinkerConfig; source: CachedSource }> | null = null;

/**
 * The checkpoint folder as in-memory bytes (ArrayBuffers, not Blobs: Chromium's blob store
 * refuses the 2 GB f32 GGUF while a 1 GB checkpoint blob is still alive).
 */
function checkpoint() {
  opened ??= (async () => {
    const bytes = new Map<string, Uint8Array>();
    for (const name of ['config.json', 'model.safetensors']) {
      const r = await fetch(`/ckpt/${name}`);
      if (!r.ok) throw new Error(`GET /ckpt/${name}: ${r.status}`);
      bytes.set(name, new Uint8Array(await r.arrayBuffer()));
    }
    const files: CheckpointFiles = {
      location: '/ckpt/',
      async open(name) { const b = bytes.get(name); return b ? bytesSource(b, name) : null; },
    };
    const cp = await openCheckpoint(files);
    return { checkpoint: cp, config: (await loadOmniConfig(cp, ['thinker'])).thinker, source: new CachedSource(cp) };
  })();
  return opened;
}

/** Drops the checkpoint's bytes once a model is loaded (the page then holds the GGUF too). */
async function releaseCheckpoint(): Promise<void> {
  const o = opened;
  opened = null;
  if (o) await (await o).checkpoint.close();
}

/** The wasm build and GEMV activations a run asks for. */
export interface WasmChoice { simd?: WasmSimd; quantizedActivations?: QuantizedActivations }

async function loadOurs(kind: 'wasm' | 'webgpu', format: WeightFormat, threads: number, wasm: WasmChoice = {}) {
  const { config, source } = await checkpoint();
  const backend: Backend = kind === 'wasm' ? await createWasmBackend({ threads, ...wasm }) : await createWebGPUBackend();
  try {
    const t0 = now();
    const thinker = await Thinker.load(backend, source, config, { format });
    return {
      thinker, loadMs: now() - t0, info: backend.info,
      dispose() { thinker.dispose(); backend.destroy(); },
    };
  } catch (e) {
    backend.destroy();
    throw e;
  } finally {
    source.forget();
    await releaseCheckpoint();
  }
}

/** llama.cpp (wllama) on a GGUF file, and one completion request timed as our decode is. */
async function loadPeer(file: string, threads: number) {
  const blob = await (await fetch(`/gguf/${file}`)).blob();
  const wllama = new Wllama({ default: '/wllama/wasm/wllama.wasm' }, { suppressNativeLog: true });
  const t0 = now();
  // n_gpu_layers 0: llama.cpp's CPU (wasm SIMD) path; wllama would offload to WebGPU otherwise.
  await wllama.loadModel([blob], { n_threads: threads, n_gpu_layers: 0, n_ctx: 2048, seed: 1 });
  const loadMs = now() - t0;
  // A text prompt: wllama 3.x takes strings only (a token-id array breaks its worker glue).
  // " the", " and", " hello" are one Qwen token each; prompt_n in the timings confirms the
  // length. Each request starts with another token, so no cached prefix is reused. Streamed,
  // so each token's arrival is timed in the page (median step) as ours is.
  const noReuse = { cache_prompt: false };
  const complete = async (word: string, tokens: number, maxTokens: number, warm: number) => {
    const stamps: number[] = [];
    let timings: ResultTimings | undefined;
    await wllama.createCompletion({
      prompt: word.repeat(tokens), max_tokens: maxTokens, temperature: 0, ignore_eos: true, ...noReuse,
      stream: true,
      onData: (chunk: RawCompletionChunk) => {
        if (chunk.choices?.[0]?.text) stamps.push(now());
        if (chunk.timings) timings = chunk.timings;
      },
    });
    if (!timings) throw new Error('wllama returned no timings');
    // Steps after the first `warm` tokens; the first token comes with the prompt pass.
    const steps = stamps.slice(warm + 1).map((t, i) => t - stamps[warm + i]);
    return {
      prompt: { tokens: timings.prompt_n, tokPerS: timings.prompt_per_second },
      decode: {
        context: timings.prompt_n, tokens: steps.length, tokPerS: 1000 / median(steps),
        meanTokPerS: timings.predicted_per_second, streamedTokens: stamps.length,
      },
    };
  };
  const base = {
    weights: file, threads: wllama.getNumThreads(), multithread: wllama.isMultithread(), loadMs,
    metadata: Object.fromEntries(Object.entries(wllama.getModelMetadata().meta).filter(([k]) => !/^tokenizer\.ggml\.(tokens|merges|token_type)/.test(k))),
  };
  return {
    base,
    warmUp: () => complete(' and', 8, 2, 0),
    /** Decode right after a 1-token prompt. */
    decodeShort: (o: PairOptions) => complete(' hello', 1, o.decodeTokens + o.warmupTokens + 1, o.warmupTokens),
    /** A prompt of `prefillTokens`, then decode at that context. */
    prefillAndDecode: (o: PairOptions) => complete(' the', o.prefillTokens, o.decodeTokens + o.warmupTokens + 1, o.warmupTokens),
    /** Greedy text continuation, not timed. */
    text: async (prompt: string, n: number) => (await wllama.createCompletion({
      prompt, max_tokens: n, temperature: 0, ignore_eos: true, ...noReuse,
    })).choices[0].text,
    exit: () => wllama.exit(),
  };
}

/** Byte-level BPE token text (GPT-2's byte-to-character table) → bytes. */
function tokenBytes(text: string): number[] {
  const table = new Map<number, number>();
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    table.set(printable ? b : 256 + extra++, b);
  }
  return [...text].map((c) => table.get(c.codePointAt(0)!) ?? 0);
}

/** Sixteen words that are one Qwen token each (with their leading space), so both sides see the same ids. */
const CHECK_WORDS = ['the', 'and', 'of', 'to', 'in', 'is', 'that', 'for', 'it', 'with', 'as', 'was', 'on', 'be', 'at', 'by'];

/**
 * Same model, same answer: greedy continuation of the same 16-token prompt by our Thinker
 * (f32) and by llama.cpp on the GGUF conversion, as text. Checks that the peer runs the
 * model we run.
 */
async function greedyCheck(thinker: Thinker, peerComplete: (prompt: string, n: number) => Promise<string>, n: number) {
  const tokenizer = await (await fetch('/ckpt/tokenizer.json')).json() as { model: { vocab: Record<string, number> } };
  const byId = new Map(Object.entries(tokenizer.model.vocab).map(([t, id]) => [id, t]));
  const promptIds = CHECK_WORDS.map((w) => tokenizer.model.vocab[`Ġ${w}`]);
  if (promptIds.some((id) => id === undefined)) throw new Error('a check word is not a single token');
  const session = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: 64 } });
  const ids: number[] = [];
  try {
    await session.prefill({ ids: promptIds });
    for await (const e of session.generate({ maxNewTokens: n, stopIds: [] })) ids.push(e.id);
  } finally {
    session.dispose();
  }
  const ours = new TextDecoder().decode(new Uint8Array(ids.flatMap((id) => tokenBytes(byId.get(id) ?? ''))));
  const peer = await peerComplete(CHECK_WORDS.map((w) => ` ${w}`).join(''), n);
  let same = 0;
  while (same < Math.min(ours.length, peer.length) && ours[same] === peer[same]) same++;
  return { ours, peer, identical: ours === peer, commonPrefixChars: same, ids };
}

const bestBy = <T>(xs: T[], key: (x: T) => number) => xs.reduce((a, b) => (key(b) > key(a) ? b : a));

const api: ThinkerPageApi = {
  isolated: () => crossOriginIsolated,

  async floors(threads) {
    const probe = (file: string) => import(/* @vite-ignore */ `/probe/${file}`).then((m: { default: () => Promise<never> }) => m.default());
    const roofline = await measureRoofline(() => probe('roofline-web.mjs'), threads);
    // Where the wasm backend runs its relaxed-SIMD build, the peaks include that build's dot.
    const relaxed = await relaxedDotAvailable();
    const peaks = await measureComputePeaks(() => probe(relaxed ? 'thinker-peak-web-relaxed.mjs' : 'thinker-peak-web.mjs'), threads);
    return { roofline, peaks };
  },

  async ours(kind, format, threads, opts, wasm) {
    const ours = await loadOurs(kind, format, threads, wasm);
    try {
      const result = await benchThinker(ours.thinker, opts, now, (l) => console.log(l));
      return { info: ours.info, loadMs: ours.loadMs, result, work: tokenWork(ours.thinker, opts.kvCache) };
    } finally {
      ours.dispose();
    }
  },

  async pair(format, ggufFile, threads, opts) {
    const ours = await loadOurs('wasm', format, threads);
    try {
      const peer = await loadPeer(ggufFile, threads);
      try {
        await peer.warmUp();
        const check = format === 'f32' ? await greedyCheck(ours.thinker, peer.text, 8) : null;
        if (check) console.log(`  greedy check (f32, 16 prompt tokens → 8): ${check.identical ? 'identical' : `differs after ${check.commonPrefixChars} chars`}: ours ${JSON.stringify(check.ours)}, llama.cpp ${JSON.stringify(check.peer)}`);
        const rounds: PairResult['rounds'] = [];
        const oursOpts = (contexts: number[], skipPrefill: boolean): ThinkerBenchOptions => ({
          prefillTokens: opts.prefillTokens, contexts, decodeTokens: opts.decodeTokens, warmupTokens: opts.warmupTokens, skipPrefill,
        });
        for (let r = 0; r < opts.rounds; r++) {
          const oursFirst = r % 2 === 0;
          const runOurs = async () => {
            const short = await benchThinker(ours.thinker, oursOpts([0], true), now, (l) => console.log(l));
            const long = await benchThinker(ours.thinker, oursOpts([opts.prefillTokens], false), now, (l) => console.log(l));
            return { prefill: long.prefill, decode: [...short.decode, ...long.decode] };
          };
          const runPeer = async (): Promise<PeerRun> => {
            const short = await peer.decodeShort(opts);
            const long = await peer.prefillAndDecode(opts);
            console.log(`  llama.cpp prefill ${long.prompt.tokens}: ${long.prompt.tokPerS.toFixed(1)} tok/s; decode @${short.decode.context} ${short.decode.tokPerS.toFixed(2)}, @${long.decode.context} ${long.decode.tokPerS.toFixed(2)} tok/s`);
            return { ...peer.base, prefill: long.prompt, decode: [short.decode, long.decode] };
          };
          let o: ThinkerResult;
          let p: PeerRun;
          if (oursFirst) { o = await runOurs(); p = await runPeer(); } else { p = await runPeer(); o = await runOurs(); }
          rounds.push({ ours: o, peer: p });
        }
        // The best round of each side, phase by phase.
        const bestOurs: ThinkerResult = {
          prefill: bestBy(rounds.map((x) => x.ours.prefill!), (x) => x.tokPerS),
          decode: rounds[0].ours.decode.map((_, i) => bestBy(rounds.map((x) => x.ours.decode[i]), (x) => x.tokPerS)),
        };
        const bestPeer: PeerRun = {
          ...peer.base,
          prefill: bestBy(rounds.map((x) => x.peer.prefill!), (x) => x.tokPerS),
          decode: rounds[0].peer.decode.map((_, i) => bestBy(rounds.map((x) => x.peer.decode[i]), (x) => x.tokPerS)),
        };
        return { ours: { info: ours.info, loadMs: ours.loadMs, result: bestOurs, work: tokenWork(ours.thinker) }, peer: bestPeer, rounds, check };
      } finally {
        await peer.exit();
      }
    } finally {
      ours.dispose();
    }
  },
};

declare global {
  // eslint-disable-next-line no-var -- a global set by this page, read by Playwright
  var thinkerBench: ThinkerPageApi;
}
globalThis.thinkerBench = api;
