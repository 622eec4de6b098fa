// microphonePcm in headless Chromium: a tone played into a MediaStream comes out as 16 kHz mono
// PCM of the same pitch and level, in chunks as captured, and the capture ends on abort.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { launchChromium } from '../chromium.js';
import { startStaticServer } from '../server.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const closers: (() => Promise<void>)[] = [];

async function openPage(): Promise<Page> {
  const rollupBin = createRequire(import.meta.url).resolve('rollup/dist/bin/rollup');
  execFileSync(process.execPath, [rollupBin, '-c', `${root}e2e/microphone/rollup.config.mjs`, '--silent'], { cwd: root, stdio: 'inherit' });
  const server = await startStaticServer({ '/': `${root}e2e/microphone`, '/build/': `${root}e2e/dist/kernels/build` });
  closers.push(() => server.close());
  const browser = await launchChromium(['--autoplay-policy=no-user-gesture-required']);
  closers.push(() => browser.close());
  const page = await browser.newPage();
  page.on('pageerror', (e) => { throw e; });
  await page.goto(server.url);
  await page.waitForFunction(() => 'omniMic' in globalThis, null, { timeout: 60_000 });
  return page;
}

afterAll(async () => {
  for (const close of closers.reverse()) await close();
});

/**
 * Pitch and level robust to a few glitches (a loaded machine's audio thread can miss a
 * quantum): the mean of the middle half of the periods between rising zero crossings, and
 * the median RMS of 10 ms blocks, after the first 100 ms.
 */
function measure(samples: number[]) {
  const x = samples.slice(1600);
  const rising: number[] = [];
  for (let i = 1; i < x.length; i++) if (x[i - 1] < 0 && x[i] >= 0) rising.push(i - 1 + x[i - 1] / (x[i - 1] - x[i]));
  const periods = rising.slice(1).map((t, i) => t - rising[i]).sort((a, b) => a - b);
  const middle = periods.slice(periods.length / 4, (3 * periods.length) / 4);
  const period = middle.reduce((a, b) => a + b, 0) / middle.length;
  const levels: number[] = [];
  for (let at = 0; at + 160 <= x.length; at += 160) levels.push(Math.sqrt(x.slice(at, at + 160).reduce((e, v) => e + v * v, 0) / 160));
  levels.sort((a, b) => a - b);
  return { hz: 16000 / period, rms: levels[levels.length >> 1] };
}

describe('microphonePcm', () => {
  it('captures a MediaStream through an AudioWorklet as 16 kHz mono PCM (48 kHz and 44.1 kHz contexts)', async () => {
    const page = await openPage();
    for (const rate of [48_000, 44_100]) {
      const { samples, chunks } = await page.evaluate(([r]) => (window as unknown as { omniMic: { captureTone(hz: number, s: number, r: number): Promise<{ samples: number[]; chunks: number }> } }).omniMic.captureTone(440, 1, r), [rate]);
      expect(samples.length).toBeGreaterThanOrEqual(16_000);
      // About 43 ms per chunk at 48 kHz: many chunks, not one at the end.
      expect(chunks).toBeGreaterThan(10);
      const { hz, rms } = measure(samples);
      expect(Math.abs(hz - 440)).toBeLessThan(1);
      expect(Math.abs(rms - 0.5 / Math.SQRT2)).toBeLessThan(0.02);
    }
  });
});
