// Ten minutes of hands-free conversation in headless Chromium, accelerated: the SDK in a page
// (e2e/liveSession/page.ts) on the embedded tiny checkpoint, wasm, speech off, a sink-window
// Thinker cache, and espeak-ng utterances between 2-s silences fed through
// `session.attach({ audio: { sampleRate, chunks } })` at 20× real time.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../chromium.js';
import { bundleTestPage } from '../esbuildPage.js';
import { writeSpeechWav } from '../fakeMedia.js';
import { startStaticServer, type StaticServer } from '../server.js';
import { ensureEmbeddedModel } from '../../packages/cli/src/run.js';
import type { LiveRunOptions } from '../liveSession/page.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const pageDir = `${root}e2e/dist/liveSession`;
const LINES = ['Hello, how are you today?', 'Tell me a story about a cat.', 'What is two plus two?', 'Thanks, that is all for now.'];
const SINK = 16;
const WINDOW = 512;

let scratch: string;
let server: StaticServer;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'omniweb-live-page-'));
  LINES.forEach((text, i) => writeSpeechWav(join(scratch, `line${i}.wav`), text, 0));
  await bundleTestPage(`${root}e2e/liveSession/page.ts`, pageDir, 'live session');
  const model = await ensureEmbeddedModel(() => undefined);
  server = await startStaticServer({ '/': pageDir, '/build/': `${pageDir}/build`, '/assets/': `${root}packages/core/assets`, '/ckpt/': model, '/speech/': scratch });
  // gc() and an unrounded performance.memory, to see whether the heap grows.
  browser = await launchChromium(['--js-flags=--expose-gc', '--enable-precise-memory-info']);
  page = await browser.newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().includes('status of 404')) pageErrors.push(m.text()); });
  await page.goto(server.url);
  await page.waitForFunction(() => 'omniLive' in globalThis, null, { timeout: 60_000 });
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('a 10-minute hands-free session in Chromium (accelerated)', () => {
  it('answers every utterance with no error and no stall; the Thinker cache stays bounded and the JS heap does not grow', async () => {
    const options: LiveRunOptions = {
      utterances: LINES.map((_, i) => `/speech/line${i}.wav`), seconds: 600, gapSeconds: 2, speedup: 20,
      sink: SINK, window: WINDOW, maxNewTokens: 3, answerTimeoutMs: 30_000,
    };
    const result = await page.evaluate((o) => globalThis.omniLive.run(o), options);
    expect(result.device).toMatch(/^wasm /);
    expect(result.audioSeconds).toBeGreaterThanOrEqual(600);
    expect(result.errors).toEqual([]);
    // Every utterance heard and answered, none cut short, each within the stall timeout (else run() throws).
    expect(result.speechStarts).toBe(result.utterances);
    expect(result.turns).toHaveLength(result.utterances);
    expect(result.turns.every((t) => !t.interrupted && t.tokens > 0)).toBe(true);
    const slowestAnswerMs = Math.max(...result.turns.map((t) => t.answerMs));
    expect(slowestAnswerMs).toBeLessThan(options.answerTimeoutMs);
    // Far more went through the Thinker than its cache holds: the sink window dropped old rows instead of failing.
    const fed = result.turns.reduce((n, t) => n + t.promptTokens + t.tokens, 0);
    expect(fed).toBeGreaterThan(10 * (SINK + WINDOW));
    const [afterTen, atEnd] = result.heapBytes;
    const growth = atEnd - afterTen;
    console.log(`${result.utterances} utterances over ${result.audioSeconds.toFixed(0)} s of audio, ${fed} tokens through a ${SINK + WINDOW}-row cache; slowest answer ${slowestAnswerMs.toFixed(0)} ms after its speech end; JS heap ${(afterTen / 2 ** 20).toFixed(1)} → ${(atEnd / 2 ** 20).toFixed(1)} MiB from answer 10 to the end`);
    expect(growth).toBeLessThan(8 * 2 ** 20);
    expect(pageErrors).toEqual([]);
  }, 600_000);
});
