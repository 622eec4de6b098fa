// A converted checkpoint (the tiny one, q4) loaded twice in headless Chromium through the
// model cache: the first visit downloads and verifies every file into OPFS, the second —
// a new page of the same origin — fetches nothing of the model but its manifest. Requests
// are counted at the server.
import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext } from 'playwright-core';
import { MANIFEST_FILE } from '@omniweb/core';
import { startModelServer, type ModelServer } from '../../bench/load/server.js';
import { convertCheckpoint } from '../../packages/cli/src/convert.js';
import { ensureEmbeddedModel } from '../../packages/cli/src/run.js';
import { launchChromium } from '../chromium.js';
import type { PageLoad } from '../modelCache/page.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const pageDir = `${root}e2e/dist/modelCache`;

/** The part of esbuild's API used here (esbuild is bench/'s dependency, not e2e/'s). */
interface Esbuild {
  build(options: Record<string, unknown> & {
    plugins: { name: string; setup(b: { onResolve(o: { filter: RegExp }, f: (args: { path: string }) => { path: string }): void }): void }[];
  }): Promise<unknown>;
}

/** Bundles page.ts with the workspace packages from their sources (esbuild, as bench/ has it). */
async function bundlePage(): Promise<void> {
  const { build } = createRequire(`${root}bench/package.json`)('esbuild') as Esbuild;
  mkdirSync(`${pageDir}/build`, { recursive: true });
  await build({
    entryPoints: [`${root}e2e/modelCache/page.ts`],
    outfile: `${pageDir}/build/page.js`,
    bundle: true, format: 'esm', platform: 'browser', target: 'es2022', logLevel: 'warning',
    plugins: [{
      name: 'omniweb-workspace-sources',
      setup(b) {
        b.onResolve({ filter: /^@omniweb\/[\w-]+$/ }, (args) => {
          const pkg = args.path.slice('@omniweb/'.length);
          return { path: pkg === 'kernels' ? `${root}kernels/index.ts` : `${root}packages/${pkg}/src/index.ts` };
        });
      },
    }],
    // Node-only branches of the loader (fs, crypto) are behind runtime checks.
    external: ['node:*'],
  });
  writeFileSync(`${pageDir}/index.html`, '<!doctype html>\n<meta charset="utf-8">\n<title>model cache</title>\n<script type="module" src="./build/page.js"></script>\n');
}

describe('the model cache in Chromium', () => {
  let scratch: string;
  let server: ModelServer;
  let browser: Browser;
  /** One profile for both visits: storage (OPFS) is per context. */
  let context: BrowserContext;

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'omniweb-cache-e2e-'));
    const model = join(scratch, 'tiny-q4');
    await convertCheckpoint({ source: await ensureEmbeddedModel(() => {}), out: model, weights: 'q4', shardBytes: 4 * 2 ** 20 });
    await bundlePage();
    server = await startModelServer(
      { '/': pageDir, '/assets/': `${root}packages/core/assets`, '/model/': model },
      { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.wasm': 'application/wasm', '.json': 'application/json' },
    );
    browser = await launchChromium();
    context = await browser.newContext();
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  async function visit(): Promise<PageLoad> {
    const page = await context.newPage();
    try {
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(server.url);
      await page.waitForFunction(() => 'omniCache' in globalThis, null, { timeout: 60_000 });
      const result = await page.evaluate((url) => omniCache.load(url), `${server.url}model/`);
      expect(errors).toEqual([]);
      return result;
    } finally {
      await page.close();
    }
  }

  const modelRequests = () => [...server.requests].filter(([path]) => path.startsWith('/model/'));

  it('the first load downloads into OPFS; the second fetches only the manifest and runs the same', async () => {
    server.resetCounts();
    const first = await visit();
    expect(first).toMatchObject({ cacheKind: 'opfs', warnings: [], weights: 'q4', finiteLogits: true });
    const firstFetched = modelRequests().map(([path]) => path);
    expect(firstFetched).toContain('/model/weights-00001-of-00003.safetensors');
    expect(firstFetched).toContain('/model/config.json');

    server.resetCounts();
    const second = await visit();
    expect(second).toEqual(first);
    expect(modelRequests().map(([path]) => path)).toEqual([`/model/${MANIFEST_FILE}`]);
  });
});
