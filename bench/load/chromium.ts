/**
 * The Chromium rows of bench:load: one checkpoint load in a fresh browser context (so a fresh
 * renderer), on the one-thread wasm backend of bench/load/page.ts, with the peak resident
 * memory of every Chromium process taken from the OS (chromiumMemory.ts). The figure against
 * the budget is the page's renderer's, accounted as in Node: its peak − (its resident set
 * before the load + the device bytes of the weights, which live in its wasm heap).
 *
 * Each row loads twice: once measured by the OS alone, once sampling
 * `performance.measureUserAgentSpecificMemory()` in the page (the JS-visible part, without the
 * wasm heap). The sampled load runs apart because each eager measurement collects garbage,
 * which would lower the OS peak it is compared with.
 */
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import type { WeightFormat } from '@omniweb/core';
import { launchChromium } from '../../e2e/chromium.js';
import { bundleTestPage } from '../../e2e/esbuildPage.js';
import { measureProcessPeaks, pageRenderer, peakOverhead, type ProcessPeak } from './chromiumMemory.js';
import type { LoadModule } from './modules.js';
import type { ModelServer } from './server.js';
import type { JsMemory, PageLoadResult } from './page.js';

const here = fileURLToPath(new URL('.', import.meta.url));
/** Where the page is bundled; serve it at the origin's root, with packages/core/assets at /assets/. */
export const LOAD_PAGE_DIR = `${here}../.build/load-page`;
export const CORE_ASSETS_DIR = `${here}../../packages/core/assets`;

export interface ChromiumLoadReport extends PageLoadResult {
  model: string;
  weights: WeightFormat;
  /** Bytes the server sent during the measured load (the model's files and the kernels' ≈0.1 MB). */
  bytesFetched: number;
  /** The page's renderer, picked as chromiumMemory.ts explains. */
  renderer: ProcessPeak;
  /** renderer peak − (its resident set before + deviceBytes). */
  peakOverheadBytes: number;
  /** Every Chromium process over the same load (GPU, network and storage services, browser, other renderers). */
  processes: ProcessPeak[];
  /** From the second, sampled load (see page.ts for what it leaves out). */
  jsMemory: JsMemory;
  /** The sampled load's own time and renderer figure, for comparison. */
  sampled: { loadMs: number; peakOverheadBytes: number };
}

export function bundleLoadPage(): Promise<void> {
  return bundleTestPage(`${here}page.ts`, LOAD_PAGE_DIR, 'bench:load');
}

/** Headless Chromium whose measureUserAgentSpecificMemory answers at once instead of at the next idle GC. */
export function launchLoadBrowser(): Promise<Browser> {
  return launchChromium(['--enable-blink-features=ForceEagerMeasureMemory']);
}

/** One page load in a new context, with every process's peak over it and the bytes the server sent for it. */
async function pageLoad(browser: Browser, server: ModelServer, model: string, weights: WeightFormat, modules: LoadModule[], sampleMemory: boolean) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(server.url);
    await page.waitForFunction(() => 'loadBench' in globalThis, null, { timeout: 60_000 });
    server.resetCounts();
    const { result, processes } = await measureProcessPeaks(browser, () =>
      page.evaluate(([url, w, m, s]) => loadBench.load(url, w, m, s), [model, weights, modules, sampleMemory] as const));
    const bytesFetched = server.bytesSent();
    if (errors.length > 0) throw new Error(`the load page reported: ${errors.join('; ')}`);
    const renderer = pageRenderer(processes, result.deviceBytes);
    return { result, processes, renderer, bytesFetched, peakOverheadBytes: peakOverhead(renderer, result.deviceBytes) };
  } finally {
    await context.close();
  }
}

/**
 * Loads `model` (a URL on `server`, which serves the page at its root) in Chromium: the
 * OS-measured load, then the sampled one.
 */
export async function measureChromiumLoad(
  browser: Browser, server: ModelServer, model: string, weights: WeightFormat, modules: LoadModule[],
): Promise<ChromiumLoadReport> {
  const measured = await pageLoad(browser, server, model, weights, modules, false);
  const sampled = await pageLoad(browser, server, model, weights, modules, true);
  return {
    model, weights, bytesFetched: measured.bytesFetched, ...measured.result, jsMemory: sampled.result.jsMemory!,
    renderer: measured.renderer, peakOverheadBytes: measured.peakOverheadBytes, processes: measured.processes,
    sampled: { loadMs: sampled.result.loadMs, peakOverheadBytes: sampled.peakOverheadBytes },
  };
}
