// The product demo (examples/voice-video-assistant) in headless Chromium with a fake camera
// (a y4m clip) and a fake microphone (espeak-ng speech): real turns on the embedded tiny
// checkpoint on wasm, in-thread and on the worker pipeline, read back through the page's
// `window.omniDemo` and its panels.
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { demoState, holdTalk, startDemoBrowser, type DemoBrowser } from '../demoPage.js';
import { EMBEDDED_MODEL } from '../../packages/cli/src/run.js';
import type { DemoState } from '../../examples/voice-video-assistant/src/demoState.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const SAMPLES_PER_CODE = 480;
const PIPELINES = ['in-thread', 'workers'] as const;
/** Short replies keep a turn within seconds on two shared cores; 160 codes are 3.2 s of speech. */
const REPLY_LIMITS = 'maxTokens=12&maxCodes=160';

let demo: Promise<DemoBrowser> | undefined;
const ready = () => (demo ??= startDemoBrowser());

afterAll(async () => {
  await (await demo)?.close();
});

/** Until `turns` turns have ended and the player has played or dropped everything it was given. */
async function waitForTurns(page: Page, turns: number): Promise<DemoState> {
  await page.waitForFunction((n) => window.omniDemo.turns.length >= n && !window.omniDemo.playing, turns, { timeout: 240_000, polling: 100 });
  return demoState(page);
}

describe.each(PIPELINES)('voice & video assistant page, %s pipeline', (pipeline) => {
  const query = `?device=wasm&pipeline=${pipeline}&${REPLY_LIMITS}`;
  let pushToTalkPage: Promise<Page> | undefined;
  /** The page the push-to-talk tests share (one model load). */
  const pushToTalk = async () => ({ ...(await ready()), page: await (pushToTalkPage ??= ready().then((demo) => demo.open(query))) });

  it('loads the tiny checkpoint on the device asked for, cross-origin isolated, camera and voices shown', async () => {
    const { page, pageErrors, notFound } = await pushToTalk();
    const state = await demoState(page);
    expect(state.errors).toEqual([]);
    expect(pageErrors).toEqual([]);
    // The checkpoint loader probes optional files (an index, tokenizer variants); everything else must exist.
    expect(notFound.filter((path) => !path.startsWith('/models/'))).toEqual([]);
    expect(state.state).toBe('ready');
    expect(state.device).toBe('wasm');
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    expect(state.deviceName).toMatch(/^wasm /);
    expect(state.pipeline).toBe(pipeline);
    expect(await page.locator('#device-used').textContent()).toBe(`wasm (${state.deviceName}), ${pipeline}`);
    expect(await page.locator('#voice option').allTextContents()).toEqual(expect.arrayContaining(['Chelsie', 'Ethan']));
    expect(await page.locator('#tiny-notice').isVisible()).toBe(true);
    // The fake camera plays in the preview.
    await page.waitForFunction(() => (document.getElementById('camera') as HTMLVideoElement).videoWidth === 160, null, { timeout: 20_000 });
  });

  it('push-to-talk: the spoken clip and camera frames make a turn; text streams, 24 kHz speech plays, latencies are shown', async () => {
    const { page, speech } = await pushToTalk();
    await holdTalk(page, speech.speechSeconds);
    const state = await waitForTurns(page, 1);
    expect(state.errors).toEqual([]);
    const [turn] = state.turns;
    // What was sent: about the time the button was held, with the fake microphone's speech in it, and frames at 2 fps.
    expect(state.sent.audioSeconds).toBeGreaterThan(speech.speechSeconds - 0.5);
    expect(state.sent.audioPeak).toBeGreaterThan(0.05);
    expect(state.sent.videoFrames).toBeGreaterThanOrEqual(2);
    // The reply: text tokens, then speech at 24 kHz, 480 samples per codec code, all of it played and not silent.
    expect(turn.textTokens).toBeGreaterThan(0);
    expect(state.textTokens).toBe(turn.textTokens);
    expect((await page.locator('#answer').textContent())?.length).toBeGreaterThan(0);
    expect(turn.codes).toBeGreaterThan(0);
    expect(turn.sampleRates).toEqual([24_000]);
    expect(turn.audioSamples).toBe(turn.codes * SAMPLES_PER_CODE);
    expect(state.audioSamplesPlayed).toBe(state.audioSamplesReceived);
    expect(state.audioSamplesReceived).toBe(turn.audioSamples);
    expect(state.audioPeakPlayed).toBeGreaterThan(1e-3);
    expect(turn.interrupted).toBe(false);
    // Latency: end of speech → first text → first audio, in the panel as numbers.
    expect(turn.latencyMs.firstText).toBeGreaterThan(0);
    expect(turn.latencyMs.firstAudio).toBeGreaterThanOrEqual(turn.latencyMs.firstText!);
    expect(await page.locator('#latency-first-text').textContent()).toBe(`${turn.latencyMs.firstText} ms`);
    expect(await page.locator('#latency-first-audio').textContent()).toBe(`${turn.latencyMs.firstAudio} ms`);
    mkdirSync(`${root}test-results`, { recursive: true });
    await page.screenshot({ path: `${root}test-results/voice-video-assistant-push-to-talk-${pipeline}.png`, fullPage: true });
  });

  it('barge-in: talking during playback stops the voice within one block, and the next turn answers', async () => {
    const { page, speech } = await pushToTalk();
    const before = await demoState(page);
    await holdTalk(page, 1);
    // This first turn is what gets cut: wait until its voice is playing, then talk over it.
    await page.waitForFunction((played) => window.omniDemo.playing && window.omniDemo.audioSamplesPlayed > played, before.audioSamplesPlayed, { timeout: 240_000, polling: 20 });
    const atBargeIn = await demoState(page);
    await page.locator('#talk').dispatchEvent('pointerdown');
    await page.waitForFunction(() => !window.omniDemo.playing, null, { timeout: 5_000, polling: 20 });
    await page.waitForTimeout(500);
    const afterStop = await demoState(page);
    expect(afterStop.bargeIns.length).toBe(before.bargeIns.length + 1);
    // Within one block: seen from outside, and by the player's own count when it obeyed the stop.
    expect(afterStop.audioSamplesPlayed - atBargeIn.audioSamplesPlayed).toBeLessThanOrEqual(afterStop.largestAudioChunk);
    const { samplesPlayedBefore, samplesPlayedAtStop } = afterStop.bargeIns.at(-1)!;
    expect(samplesPlayedAtStop! - samplesPlayedBefore).toBeLessThanOrEqual(afterStop.largestAudioChunk);
    await page.waitForTimeout(speech.speechSeconds * 1000);
    await page.locator('#talk').dispatchEvent('pointerup');
    const state = await waitForTurns(page, before.turns.length + 2);
    expect(state.errors).toEqual([]);
    const [cut, next] = state.turns.slice(before.turns.length);
    // Cut in the model (interrupted) or in the player (less of it played than was made).
    expect(cut.interrupted || afterStop.audioSamplesPlayed - before.audioSamplesPlayed < cut.audioSamples).toBe(true);
    expect(next.interrupted).toBe(false);
    expect(next.textTokens).toBeGreaterThan(0);
    expect(next.audioSamples).toBe(next.codes * SAMPLES_PER_CODE);
    // The camera keeps giving frames turn after turn.
    expect(state.sent.videoFrames - before.sent.videoFrames).toBeGreaterThanOrEqual(4);
    expect(state.audioSamplesPlayed - afterStop.audioSamplesPlayed).toBe(next.audioSamples);
  });

  it('hands-free (?autostart=1): encoded while the user speaks, answered at the speech end, talked over, answered again', async () => {
    const { page: pushToTalkDone, open, pageErrors } = await pushToTalk();
    await pushToTalkDone.close();
    const page = await open(`${query}&autostart=1`);
    expect(await demoState(page)).toMatchObject({ state: 'listening', handsFree: true, errors: [] });
    expect(await page.locator('#talk').isDisabled()).toBe(true);
    // The fake microphone loops the utterance with 2 s of silence: the detector ends a turn in each
    // pause, and the next utterance talks over the reply. A whole utterance lasts well over one 2 s audio block.
    await page.waitForFunction(() => {
      const speech = window.omniDemo.speech;
      return speech.some((end, i) => end.phase === 'end' && i > 0 && speech[i - 1].phase === 'start' && end.atMs - speech[i - 1].atMs > 2500);
    }, null, { timeout: 120_000, polling: 50 });
    const heard = await demoState(page);
    const endIndex = heard.speech.findIndex((end, i) => end.phase === 'end' && i > 0 && end.atMs - heard.speech[i - 1].atMs > 2500);
    // Counted when the speech end arrived: the live path had encoded audio and camera frames while the speech was still coming in.
    expect(heard.speech[endIndex].encodedAudioBlocks).toBeGreaterThanOrEqual(1);
    expect(heard.speech[endIndex].encodedVideoFrames).toBeGreaterThanOrEqual(1);
    const turnsBefore = heard.turns.length;
    const playedBefore = heard.audioSamplesPlayed;
    // That utterance's reply: text and speech, then the next utterance barges in.
    await page.waitForFunction((n) => window.omniDemo.turns.length > n, turnsBefore, { timeout: 120_000, polling: 50 });
    await page.waitForFunction(
      (n) => window.omniDemo.bargeIns.length > n && window.omniDemo.bargeIns.at(-1)!.samplesPlayedAtStop !== null,
      heard.bargeIns.length, { timeout: 120_000, polling: 50 },
    );
    const cut = await demoState(page);
    const answered = cut.turns[turnsBefore];
    expect(answered.textTokens).toBeGreaterThan(0);
    expect(answered.sampleRates).toEqual([24_000]);
    expect(answered.interrupted ? answered.audioSamples <= answered.codes * SAMPLES_PER_CODE : answered.audioSamples === answered.codes * SAMPLES_PER_CODE).toBe(true);
    expect(cut.audioSamplesPlayed).toBeGreaterThan(playedBefore);
    expect(answered.latencyMs.firstText).toBeGreaterThan(0);
    expect(await page.locator('#latency-first-text').textContent()).toMatch(/^\d+ ms$/);
    expect(await page.locator('#encoded').textContent()).toMatch(/^[1-9]\d* audio blocks, [1-9]\d* video frames/);
    const bargeIn = cut.bargeIns.at(-1)!;
    expect(bargeIn.samplesPlayedAtStop! - bargeIn.samplesPlayedBefore).toBeLessThanOrEqual(cut.largestAudioChunk);
    // The turn after the barge-in answers too.
    const turnsAtBargeIn = cut.turns.length;
    await page.waitForFunction((n) => window.omniDemo.turns.slice(n).some((t) => t.textTokens > 0 && t.audioSamples > 0), turnsAtBargeIn, { timeout: 120_000, polling: 50 });
    const after = await demoState(page);
    expect(after.audioSamplesPlayed).toBeGreaterThan(bargeIn.samplesPlayedAtStop!);
    mkdirSync(`${root}test-results`, { recursive: true });
    await page.screenshot({ path: `${root}test-results/voice-video-assistant-hands-free-${pipeline}.png`, fullPage: true });
    await page.locator('#hands-free').uncheck();
    await page.waitForFunction(() => !window.omniDemo.handsFree && ['ready', 'thinking', 'answering'].includes(window.omniDemo.state), null, { timeout: 60_000 });
    expect(after.errors).toEqual([]);
    expect(pageErrors).toEqual([]);
    await page.close();
  });
});

describe('voice & video assistant page, settings', () => {
  it('shows a bad setting or a missing model as an error instead of loading', async () => {
    const { open } = await ready();
    const badDevice = await open('?device=cuda');
    expect(await demoState(badDevice)).toMatchObject({ state: 'error', errors: ['?device=cuda: expected one of auto, webgpu, wasm'] });
    await badDevice.close();
    const noModel = await open('?device=wasm&model=models/none/');
    const state = await demoState(noModel);
    expect(state.state).toBe('error');
    expect(state.errors).toHaveLength(1);
    expect(state.errors[0]).toMatch(/^loading failed: [A-Z_]+: .*models\/none/);
    expect(await noModel.locator('#errors li').allTextContents()).toEqual(state.errors);
    expect(await noModel.locator('#tiny-notice').isVisible()).toBe(false);
    expect(await noModel.locator('#talk').isDisabled()).toBe(true);
    await noModel.close();
  });

  it('loads a checkpoint folder picked with the file input (in-thread) and answers on it', async () => {
    const { open, speech } = await ready();
    const page = await open(`?device=wasm&${REPLY_LIMITS}`);
    await page.locator('input[name="source"][value="folder"]').check();
    await page.locator('#model-folder').setInputFiles(EMBEDDED_MODEL);
    await page.locator('#pipeline').selectOption('workers');
    await page.locator('#load').click();
    await page.waitForFunction(() => window.omniDemo.state === 'loading', null, { timeout: 10_000, polling: 20 });
    await page.waitForFunction(() => window.omniDemo.state === 'ready' || window.omniDemo.state === 'error', null, { timeout: 180_000 });
    const loaded = await demoState(page);
    expect(loaded.errors).toEqual([]);
    // Picked files cannot be opened by each stage worker: the page loads them in-thread.
    expect(loaded.pipeline).toBe('in-thread');
    expect(await page.locator('#tiny-notice').isVisible()).toBe(false);
    expect(await page.locator('#load-label').textContent()).toBe('loaded');
    await holdTalk(page, speech.speechSeconds);
    const state = await waitForTurns(page, 1);
    expect(state.errors).toEqual([]);
    expect(state.turns[0].textTokens).toBeGreaterThan(0);
    expect(state.turns[0].audioSamples).toBe(state.turns[0].codes * SAMPLES_PER_CODE);
    await page.close();
  });
});

describe('voice & video assistant page, device auto', () => {
  it('says so and runs on wasm in a browser without WebGPU', async () => {
    const { open, pageErrors } = await ready();
    const page = await open('', () => { delete (Navigator.prototype as { gpu?: unknown }).gpu; });
    const state = await demoState(page);
    expect(state.errors).toEqual([]);
    expect(state.state).toBe('ready');
    expect(state.device).toBe('wasm');
    expect(await page.locator('#device-notice').textContent()).toMatch(/no WebGPU.*WebAssembly/);
    expect(await page.locator('#device-used').textContent()).toMatch(/^wasm /);
    expect(pageErrors).toEqual([]);
    await page.close();
  });

  it('takes WebGPU where an adapter exists (SwiftShader here) and answers a short push-to-talk turn on it', async () => {
    const { open, pageErrors } = await ready();
    // SwiftShader runs WGSL on the CPU: a few tokens and codes, and the euler solver (a quarter
    // of rk4's DiT evaluations), keep the turn within a minute.
    const page = await open('?maxTokens=3&maxCodes=20&solver=euler');
    const loaded = await demoState(page);
    expect(loaded.errors).toEqual([]);
    expect(loaded.device).toBe('webgpu');
    expect(await page.locator('#device-notice').isVisible()).toBe(false);
    await holdTalk(page, 1.5);
    const state = await waitForTurns(page, 1);
    expect(state.errors).toEqual([]);
    const [turn] = state.turns;
    expect(turn.textTokens).toBeGreaterThan(0);
    expect(turn.codes).toBeGreaterThan(0);
    expect(turn.audioSamples).toBe(turn.codes * SAMPLES_PER_CODE);
    expect(state.audioSamplesPlayed).toBe(turn.audioSamples);
    expect(pageErrors).toEqual([]);
    await page.close();
  });
});
