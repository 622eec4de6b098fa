/**
 * The voice & video assistant page for a browser test: its bundle built, served with the
 * embedded tiny checkpoint, in headless Chromium with espeak-ng speech as the fake microphone
 * and a y4m clip as the fake camera.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from './chromium.js';
import { writeSpeechWav, writeY4m, type SpeechWav } from './fakeMedia.js';
import { serveDemo } from '../examples/voice-video-assistant/src/demoServer.js';
import type { DemoState } from '../examples/voice-video-assistant/src/demoState.js';

const root = fileURLToPath(new URL('..', import.meta.url));

export interface DemoBrowser {
  speech: SpeechWav;
  browser: Browser;
  /** Uncaught page errors and console errors (404s excepted: the checkpoint loader probes optional files). */
  pageErrors: string[];
  /** Paths the pages asked for and the server did not have. */
  notFound: string[];
  /** A page of the demo (with `initScript` run before its own), once its model is loaded or failed to load. */
  open(query: string, initScript?: () => void): Promise<Page>;
  close(): Promise<void>;
}

/** Builds the demo's bundle and opens Chromium on it; `chromiumArgs` are added to the fake-media flags. */
export async function startDemoBrowser(chromiumArgs: readonly string[] = []): Promise<DemoBrowser> {
  const rollupBin = createRequire(import.meta.url).resolve('rollup/dist/bin/rollup');
  execFileSync(process.execPath, [rollupBin, '-c', `${root}examples/voice-video-assistant/rollup.config.mjs`, '--silent'], { cwd: root, stdio: 'inherit' });
  const scratch = mkdtempSync(join(tmpdir(), 'omniweb-demo-page-'));
  // One breath (no sentence pause the detector could take for the end), then 2 s of silence.
  const speech = writeSpeechWav(join(scratch, 'speech.wav'), 'Hello there what do you see in front of the camera right now', 2);
  const camera = join(scratch, 'camera.y4m');
  writeY4m(camera, { width: 160, height: 120, fps: 10, frames: 30 });
  const server = await serveDemo(0, () => undefined);
  const browser = await launchChromium([
    '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    `--use-file-for-fake-audio-capture=${speech.path}`, `--use-file-for-fake-video-capture=${camera}`,
    '--autoplay-policy=no-user-gesture-required', ...chromiumArgs,
  ]);
  const pageErrors: string[] = [];
  const notFound: string[] = [];
  return {
    speech, browser, pageErrors, notFound,
    async open(query, initScript) {
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      if (initScript) await page.addInitScript(initScript);
      page.on('pageerror', (e) => pageErrors.push(String(e)));
      // A missing resource is reported by its response; the console's copy of it names no URL.
      page.on('response', (r) => { if (r.status() === 404) notFound.push(new URL(r.url()).pathname); });
      page.on('console', (m) => { if (m.type() === 'error' && !m.text().includes('status of 404')) pageErrors.push(m.text()); });
      await page.goto(`${server.url}${query}`);
      await page.waitForFunction(() => ['ready', 'listening', 'error'].includes(window.omniDemo?.state), null, { timeout: 180_000 });
      return page;
    },
    async close() {
      await browser.close();
      await server.close();
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}

export const demoState = (page: Page): Promise<DemoState> => page.evaluate(() => structuredClone(window.omniDemo));

/** Holds the talk button for `seconds` (pointer events, as a finger or mouse gives them). */
export async function holdTalk(page: Page, seconds: number): Promise<void> {
  await page.locator('#talk').dispatchEvent('pointerdown');
  await page.waitForFunction(() => window.omniDemo.state === 'recording', null, { timeout: 10_000 });
  await page.waitForTimeout(seconds * 1000);
  await page.locator('#talk').dispatchEvent('pointerup');
}
