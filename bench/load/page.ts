/**
 * The bench:load page (bundled by bench/load/chromium.ts): opens a checkpoint folder by URL
 * with no model cache, as a first visit does, and loads the chosen modules onto a one-thread
 * wasm backend. Exposed as `globalThis.loadBench`.
 *
 * Optionally it samples `performance.measureUserAgentSpecificMemory()` while loading. That
 * figure is only the JS-visible part: it counts JS heaps and ArrayBuffers (the load's
 * temporary buffers) but not WebAssembly.Memory, i.e. not the wasm heap that holds the
 * weights. It answers only once every agent of the page has, and a pool thread parked in
 * Atomics.wait never does, hence one thread (no pool). A measurement that does not answer
 * within JS_MEMORY_TIMEOUT_MS ends the sampling and is reported as timed out. Samples are
 * JS_MEMORY_INTERVAL_MS apart, so a buffer that lives shorter than that can fall between two.
 */
import { createBackend, loadOmniConfig, openCheckpoint, type WeightFormat } from '@omniweb/core';
import { loadModules, memoryAccount, type LoadModule, type ModuleLoad } from './modules.js';

const JS_MEMORY_TIMEOUT_MS = 10_000;
const JS_MEMORY_INTERVAL_MS = 250;

export interface JsMemory {
  /** What the figure leaves out, stated with it. */
  scope: 'JS heaps and ArrayBuffers of the page; excludes WebAssembly.Memory (the wasm heap holding the weights)';
  samples: number;
  /** Time between the end of one measurement and the start of the next. */
  intervalMs: number;
  /** Largest `bytes` of the answered samples; null when none answered. */
  maxBytes: number | null;
  /** A measurement did not answer within the timeout (sampling stopped there). */
  timedOut: boolean;
  /** Why there are no samples (API missing, not cross-origin isolated, a rejection). */
  error: string | null;
}

export interface PageLoadResult {
  backend: string;
  converted: boolean;
  openMs: number;
  loadMs: number;
  modules: ModuleLoad[];
  deviceBytes: number;
  budgetBytes: number;
  jsMemory: JsMemory | null;
}

type MeasureMemory = () => Promise<{ bytes: number }>;

/** Samples the page's JS-visible memory until `done` settles. */
async function sampleJsMemory(done: Promise<unknown>): Promise<JsMemory> {
  const memory: JsMemory = {
    scope: 'JS heaps and ArrayBuffers of the page; excludes WebAssembly.Memory (the wasm heap holding the weights)',
    samples: 0, intervalMs: JS_MEMORY_INTERVAL_MS, maxBytes: null, timedOut: false, error: null,
  };
  const measure = (performance as unknown as { measureUserAgentSpecificMemory?: MeasureMemory }).measureUserAgentSpecificMemory;
  if (typeof measure !== 'function') return { ...memory, error: 'performance.measureUserAgentSpecificMemory is missing' };
  if (!crossOriginIsolated) return { ...memory, error: 'the page is not cross-origin isolated' };
  let finished = false;
  const settled = done.then(() => { finished = true; }, () => { finished = true; });
  const wait = (ms: number) => new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms));
  while (!finished) {
    let answer: { bytes: number } | 'timeout';
    try {
      answer = await Promise.race([measure.call(performance), wait(JS_MEMORY_TIMEOUT_MS)]);
    } catch (e) {
      return { ...memory, error: String(e) };
    }
    if (answer === 'timeout') return { ...memory, timedOut: true };
    memory.samples++;
    memory.maxBytes = Math.max(memory.maxBytes ?? 0, answer.bytes);
    await Promise.race([settled, wait(JS_MEMORY_INTERVAL_MS)]);
  }
  return memory;
}

async function load(url: string, weights: WeightFormat, modules: LoadModule[], sampleMemory: boolean): Promise<PageLoadResult> {
  const backend = await createBackend({ device: 'wasm', threads: 1 });
  try {
    const started = performance.now();
    const loading = (async () => {
      const checkpoint = await openCheckpoint(url);
      const openMs = performance.now() - started;
      try {
        const config = await loadOmniConfig(checkpoint);
        const { loads } = await loadModules(backend, checkpoint, config, weights, modules);
        return { openMs, loadMs: performance.now() - started, loads, converted: checkpoint.manifest !== null };
      } finally {
        await checkpoint.close();
      }
    })();
    const [loaded, jsMemory] = await Promise.all([loading, sampleMemory ? sampleJsMemory(loading) : null]);
    return {
      backend: backend.info.name, converted: loaded.converted, openMs: loaded.openMs, loadMs: loaded.loadMs,
      modules: loaded.loads, ...memoryAccount(loaded.loads), jsMemory,
    };
  } finally {
    backend.destroy();
  }
}

declare global {
  var loadBench: { load: typeof load };
}
globalThis.loadBench = { load };
