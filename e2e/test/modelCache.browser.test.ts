// Converted checkpoints (q4) loaded twice in headless Chromium through the model cache: the
// tiny one, and the 0.5B-shaped Thinker (≈300 MB converted, in two shards). The first visit
// downloads and verifies every file into OPFS, the second — a new page of the same origin —
// fetches nothing of the model but its manifest. Requests are counted at the server.
// The 0.5B's first (network) load must stay within the streaming budget of issue 8: the page's
// renderer's peak resident set, from the OS (bench/load/chromiumMemory.ts), above its resident
// set before the load plus the weights' device bytes (its wasm heap) ≤ the largest tensor's
// stored + device bytes + 256 MiB.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext } from 'playwright-core';
import { MANIFEST_FILE } from '@omniweb/core';
import { measureProcessPeaks, pageRenderer, peakOverhead, peakRise, processOfType, type ProcessPeak } from '../../bench/load/chromiumMemory.js';
import { PAGE_CONTENT_TYPES, startModelServer, type ModelServer } from '../../bench/load/server.js';
import { convertCheckpoint } from '../../packages/cli/src/convert.js';
import { makeCheckpoint } from '../../packages/cli/src/makeCheckpoint.js';
import { ensureEmbeddedModel } from '../../packages/cli/src/run.js';
import { launchChromium } from '../chromium.js';
import { bundleTestPage } from '../esbuildPage.js';
import type { PageLoad } from '../modelCache/page.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const pageDir = `${root}e2e/dist/modelCache`;

describe('the model cache in Chromium', () => {
  let scratch: string;
  let server: ModelServer;
  let browser: Browser;
  /** One profile for both visits: storage (OPFS) is per context. */
  let context: BrowserContext;

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'omniweb-cache-e2e-'));
    await convertCheckpoint({ source: await ensureEmbeddedModel(() => {}), out: join(scratch, 'tiny'), weights: 'q4', shardBytes: 4 * 2 ** 20 });
    // The bf16 original (≈1 GB) is only the converter's input.
    await makeCheckpoint({ shape: '0.5b-thinker', out: join(scratch, 'bf16-0.5b'), seed: 0, dtype: 'bf16', shardBytes: 5e9 });
    await convertCheckpoint({ source: join(scratch, 'bf16-0.5b'), out: join(scratch, '0.5b'), weights: 'q4', shardBytes: 256 * 2 ** 20 });
    rmSync(join(scratch, 'bf16-0.5b'), { recursive: true });
    await bundleTestPage(`${root}e2e/modelCache/page.ts`, pageDir, 'model cache');
    server = await startModelServer({ '/': pageDir, '/assets/': `${root}packages/core/assets`, '/model/': scratch }, PAGE_CONTENT_TYPES);
    browser = await launchChromium();
    context = await browser.newContext();
  }, 600_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  /** One visit; every Chromium process's peak resident set over the page's load comes with it. */
  async function visit(model: string): Promise<{ result: PageLoad; processes: ProcessPeak[] }> {
    const page = await context.newPage();
    try {
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(server.url);
      await page.waitForFunction(() => 'omniCache' in globalThis, null, { timeout: 60_000 });
      const measured = await measureProcessPeaks(browser, () => page.evaluate((url) => omniCache.load(url), `${server.url}model/${model}/`));
      expect(errors).toEqual([]);
      return measured;
    } finally {
      await page.close();
    }
  }

  const modelRequests = (model: string) => [...server.requests.keys()].filter((path) => path.startsWith(`/model/${model}/`));

  for (const [model, shards] of [['tiny', 3], ['0.5b', 2]] as const) {
    it(`${model}: the first load downloads into OPFS; the second fetches only the manifest and runs the same`, async () => {
      server.resetCounts();
      const { result: first, processes } = await visit(model);
      expect(first).toMatchObject({ cacheKind: 'opfs', warnings: [], weights: 'q4', finiteLogits: true });
      const firstFetched = modelRequests(model);
      for (let i = 1; i <= shards; i++) expect(firstFetched).toContain(`/model/${model}/weights-0000${i}-of-0000${shards}.safetensors`);
      expect(firstFetched).toContain(`/model/${model}/config.json`);

      if (model === '0.5b') expectWithinBudget(first, processes);

      server.resetCounts();
      const { result: second } = await visit(model);
      expect(second).toEqual(first);
      expect(modelRequests(model)).toEqual([`/model/${model}/${MANIFEST_FILE}`]);
    });
  }

  function expectWithinBudget(load: PageLoad, processes: ProcessPeak[]) {
    const renderer = pageRenderer(processes, load.deviceBytes);
    const overhead = peakOverhead(renderer, load.deviceBytes);
    const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
    const rise = (type: string) => {
      const p = processOfType(processes, type);
      return p ? `+${mib(peakRise(p))}` : 'none';
    };
    console.log(
      `0.5B q4 first (network) load in Chromium: renderer ${renderer.pid} peak ${mib(renderer.peakBytes)} (${renderer.peakReset ? 'reset before the load' : 'since its start'}), `
      + `resident before ${mib(renderer.rssBeforeBytes)}, weights ${mib(load.deviceBytes)}, peak over resident ${mib(overhead)}, budget ${mib(load.budgetBytes)}; `
      + `GPU ${rise('GPU')}, network ${rise('network.mojom.NetworkService')}, storage ${rise('storage.mojom.StorageService')}`,
    );
    expect(overhead).toBeLessThanOrEqual(load.budgetBytes);
  }
});
