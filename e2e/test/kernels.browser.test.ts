// The kernel cases inside headless Chromium, on the WebGPU (SwiftShader) and the wasm
// backend, from a cross-origin-isolated page: one test per (backend, case).
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { kernelCases, kv8Cases } from '@omniweb/kernels';
import { launchChromium } from '../chromium.js';
import { startStaticServer } from '../server.js';
import type { BrowserBackendKind } from '../kernels/page.js';
// Where the page's wasm backends load their builds from (not exported from @omniweb/core).
import { wasmAssets } from '../../packages/core/src/wasmAssets.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const BACKENDS: readonly BrowserBackendKind[] = ['webgpu', 'wasm'];

interface Session { page: Page; pageErrors: string[]; requestedPaths: string[] }
/** What the session opened, closed in reverse order after the file, whether the session started or not. */
const closers: (() => Promise<void>)[] = [];

/** Bundle, serve, launch, open. Every test awaits this, so a failure here fails each test instead of skipping it. */
async function startSession(): Promise<Session> {
  const rollupBin = createRequire(import.meta.url).resolve('rollup/dist/bin/rollup');
  execFileSync(process.execPath, [rollupBin, '-c', `${root}e2e/rollup.config.mjs`, '--silent'], { cwd: root, stdio: 'inherit' });
  const server = await startStaticServer({
    '/': `${root}e2e/kernels`,
    '/build/': `${root}e2e/dist/kernels/build`,
    '/assets/': `${root}packages/core/assets`,
  });
  closers.push(() => server.close());
  const browser = await launchChromium();
  closers.push(() => browser.close());
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  const requestedPaths: string[] = [];
  page.on('request', (r) => requestedPaths.push(new URL(r.url()).pathname));
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
  await page.goto(server.url);
  await page.waitForFunction(() => 'omniKernels' in globalThis, null, { timeout: 60_000 });
  return { page, pageErrors, requestedPaths };
}

let session: Promise<Session> | undefined;
const ready = () => (session ??= startSession());

afterAll(async () => {
  for (const close of closers.reverse()) await close();
});

describe('kernel page', () => {
  it('is cross-origin isolated (SharedArrayBuffer, wasm threads)', async () => {
    const { page } = await ready();
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    expect(await page.evaluate(() => typeof SharedArrayBuffer)).toBe('function');
  });

  it('runs the same case list as Node', async () => {
    const { page } = await ready();
    expect(await page.evaluate(() => omniKernels.caseNames())).toEqual(kernelCases.map((c) => c.name));
  });

  it('gets a WebGPU adapter', async () => {
    const { page } = await ready();
    expect((await page.evaluate(() => omniKernels.info('webgpu'))).kind).toBe('webgpu');
  });

  it('chose the threaded relaxed-SIMD wasm build (Chromium runs relaxed SIMD)', async () => {
    const { page, requestedPaths } = await ready();
    const info = await page.evaluate(() => omniKernels.info('wasm'));
    expect(info.kind).toBe('wasm');
    expect(info.threads).toBeGreaterThan(1);
    expect(info.wasmSimd).toBe('relaxed');
    // In place where the engine's dot reads bytes above 127 as unsigned (x86 with AVX-VNNI), shifted elsewhere.
    expect(info.wasmDotBytes).toBe((await page.evaluate(() => omniKernels.readsUnsignedDotBytes())) ? 'unsigned' : 'portable');
    const fetched = (asset: URL) => requestedPaths.includes(`/assets/${basename(asset.pathname)}`);
    expect(fetched(wasmAssets.relaxed.threaded.wasm)).toBe(true);
    expect(fetched(wasmAssets.relaxed.singleThreaded.wasm)).toBe(false);
    expect(fetched(wasmAssets.baseline.singleThreaded.wasm)).toBe(false);
  });

  it('gives bit-identical q4 and q8 GEMVs (int16 and int8 activations) from the relaxed build, with dot bytes above 127 or not, and the baseline build', async () => {
    const { page } = await ready();
    const { builds, compared, differing } = await page.evaluate(() => omniKernels.compareWasmBuilds());
    const auto = (await page.evaluate(() => omniKernels.readsUnsignedDotBytes())) ? 'unsigned' : 'portable';
    expect(builds).toEqual([...new Set([`relaxed/${auto} baseline`, 'relaxed/portable baseline'])]);
    expect(compared).toBe(2 * 2 * 2 * 2 * (37 + 64 + 2053 + 5 * 9 + 12 * 4));
    expect(differing).toBe(0);
  });
});

// The 8-bit KV cache (wasm only) with its score dots on bytes above 127 where the engine reads them
// as unsigned (x86 with AVX-VNNI), and on the int16 path that every engine runs.
const kv8Runs: readonly { kind: BrowserBackendKind; label: string }[] = [
  { kind: 'wasm', label: 'wasm in Chromium, 8-bit KV cache' },
  { kind: 'wasm-portable', label: 'wasm in Chromium (portable dot bytes), 8-bit KV cache' },
];
const runs = [
  ...BACKENDS.map((kind) => ({ kind, label: `${kind} in Chromium`, cases: kernelCases })),
  ...kv8Runs.map((r) => ({ ...r, cases: kv8Cases })),
];

for (const { kind, label, cases } of runs) {
  describe(label, () => {
    for (const { name } of cases) {
      it(name, async () => {
        const { page, pageErrors } = await ready();
        const errorsBefore = pageErrors.length;
        const result = await page.evaluate(([k, n]) => omniKernels.run(k, n), [kind, name] as const);
        if ('error' in result) throw new Error(result.error);
        expect(pageErrors.slice(errorsBefore)).toEqual([]);
        expect(result.maxRelErr).toBeLessThanOrEqual(result.bound);
      });
    }
  });
}
