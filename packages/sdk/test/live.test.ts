// Live sessions on the tiny synthetic checkpoint (wasm, f32, greedy): PCM attached at accelerated
// speed with voice-activity turn-taking, push-to-talk, barge-in, and a 10-minute session.
// Speech is real (espeak-ng, scripts/setup.sh installs it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeWav, logMel, MelStream, resample, type RgbImage, type TimedFrame } from '@omniweb/media';
import { Omni, type OmniEvent, type OmniSession } from '../src/index.js';
import { collect, makeTiny, throws } from './helpers.js';

const RATE = 16_000;
/** The audio a live turn takes around the detector's speech boundaries (attachment.ts). */
const PRE_ROLL = 0.2 * RATE;
const TAIL = 0.2 * RATE;

let tiny: Awaited<ReturnType<typeof makeTiny>>;
let omni: Omni;
let scratch: string;

beforeAll(async () => {
  tiny = await makeTiny();
  omni = await Omni.load({ model: tiny.dir, device: 'wasm' });
  scratch = mkdtempSync(join(tmpdir(), 'omniweb-live-'));
});
afterAll(async () => {
  await omni?.close();
  tiny?.remove();
  rmSync(scratch, { recursive: true, force: true });
});

type Of<T extends OmniEvent['type']> = Extract<OmniEvent, { type: T }>;
const ofType = <T extends OmniEvent['type']>(events: OmniEvent[], type: T) => events.filter((e): e is Of<T> => e.type === type);

/** Speech of `text` by espeak-ng at 16 kHz, with a gain falling from 1 to `endGain` over it. */
function say(text: string, endGain = 1): Float32Array {
  const file = join(scratch, 'say.wav');
  execFileSync('espeak-ng', ['-w', file, '-s', '140', text]);
  const wav = decodeWav(readFileSync(file));
  const pcm = resample(wav.samples, wav.sampleRate, RATE);
  for (let i = 0; i < pcm.length; i++) pcm[i] *= 1 - ((1 - endGain) * i) / pcm.length;
  return pcm;
}

/** Quiet room noise (deterministic). */
function silence(seconds: number, seed = 1): Float32Array {
  const out = new Float32Array(Math.round(seconds * RATE));
  let s = seed;
  for (let i = 0; i < out.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = 3e-4 * (s / 2 ** 31 - 1);
  }
  return out;
}

function join32(...parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A promise and the function that settles it (a moment the test or a fake input waits for). */
function moment(): [Promise<void>, () => void] {
  let settle!: () => void;
  const reached = new Promise<void>((resolve) => { settle = resolve; });
  return [reached, settle];
}

/** 100 ms chunks, `speedup` times faster than real time; `before(i)` may hold chunk i back. */
async function* paced(pcm: Float32Array, speedup: number, before: (sample: number) => Promise<void> = async () => {}): AsyncGenerator<Float32Array> {
  const step = RATE / 10;
  for (let at = 0; at < pcm.length; at += step) {
    await before(at);
    await pause(100 / speedup);
    yield pcm.slice(at, Math.min(at + step, pcm.length));
  }
}

/** Resolves when `predicate` holds for an event the collector has seen (checked on every event). */
function waitFor(reader: ReturnType<typeof collect>, predicate: (events: OmniEvent[]) => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = () => {
      if (predicate(reader.events)) return resolve();
      if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(poll, 5);
    };
    poll();
  });
}

const turnEnded = (n: number) => (events: OmniEvent[]) => events.some((e) => e.type === 'turn' && e.phase === 'end' && e.turn === n);

describe('session.attach with voice-activity turns', () => {
  it('encodes and prefills audio blocks while the user speaks, then replies; the reply equals a one-shot send of the same audio', async () => {
    // The loudest frame falls in the first 2 s, so every streamed block is clamped as the whole clip is (see below).
    const speech = say('Hello there. Could you tell me what the weather will be like tomorrow afternoon?', 0.6);
    expect(speech.length / RATE).toBeGreaterThan(3);
    const pcm = join32(silence(1), speech, silence(1.5, 2));
    const session = omni.session({ speech: false, maxNewTokens: 6 });
    const reader = collect(session);
    const attachment = session.attach({ audio: { sampleRate: RATE, chunks: paced(pcm, 5) } });
    await attachment.ended;
    await waitFor(reader, turnEnded(1), 'the live turn to end');
    await session.close();
    await reader.done;

    const speechEvents = ofType(reader.events, 'speech');
    expect(speechEvents.map((e) => e.phase)).toEqual(['start', 'end']);
    const endIndex = reader.events.indexOf(speechEvents[1]);
    const before = ofType(reader.events.slice(0, endIndex), 'stats');
    // At least one whole 2-second block was encoded and prefilled before the detector heard the end.
    expect(before.at(-1)!.audioBlocks).toBeGreaterThanOrEqual(1);
    expect(before.at(-1)!.prefilledTokens).toBeGreaterThan(50);
    const turn = reader.turn(1);
    const end = turn.at(-1) as Of<'turn'> & { phase: 'end' };
    console.log(`before speech end: ${before.at(-1)!.audioBlocks} block(s) encoded, ${before.at(-1)!.prefilledTokens} of ${end.stats.promptTokens} prompt tokens prefilled`);
    expect(end.interrupted).toBe(false);
    expect(end.stats.tokens).toBeGreaterThan(0);
    const stats = ofType(turn, 'stats');
    expect(stats.at(-1)!.audioBlocks).toBe(Math.ceil(stats.at(-1)!.audioMs / 2000));
    expect(stats.at(-1)!.prefilledTokens).toBe(end.stats.promptTokens);
    expect(ofType(reader.events, 'error')).toEqual([]);

    // The turn's audio: from 200 ms before the detected start to 200 ms after the detected end.
    const start = Math.max(0, Math.round((speechEvents[0].atMs * RATE) / 1000) - PRE_ROLL);
    const stop = Math.min(pcm.length, Math.round((speechEvents[1].atMs * RATE) / 1000) + TAIL);
    const clip = pcm.slice(start, stop);
    expect(stats.at(-1)!.audioMs).toBeCloseTo((1000 * clip.length) / RATE, 6);
    // What makes the features exact: each block's running clamp already is the clip's (loudest frame in block 0).
    const whole = logMel(clip);
    const mel = new MelStream();
    const streamed = [...mel.push(clip), ...mel.finish()];
    expect(streamed[0].clampMax).toBe(whole.clampMax);
    expect(Float32Array.from(streamed.flatMap((b) => Array.from(b.features)))).toEqual(whole.features);

    const oneShot = omni.session({ speech: false, maxNewTokens: 6 });
    const oneShotReader = collect(oneShot);
    const expected = await oneShot.send({ audio: { samples: clip, sampleRate: RATE } });
    await oneShot.close();
    await oneShotReader.done;
    expect(ofType(turn, 'text').map((e) => e.id)).toEqual(ofType(oneShotReader.events, 'text').map((e) => e.id));
    expect(end.stats.promptTokens).toBe(expected.stats.promptTokens);
    expect(end.stats.tokens).toBe(expected.ids.length);
    expect(ofType(turn, 'text').map((e) => e.text).join('')).toBe(expected.text);
  });

  it('refuses a second attachment, send() during an open turn, endTurn() without one, and bad options; the session stays usable', async () => {
    const session = omni.session({ speech: false, maxNewTokens: 2 });
    throws(() => session.endTurn(), 'BAD_INPUT', /no live turn is open/);
    throws(() => session.attach({} as never), 'BAD_INPUT', /audio is required/);
    throws(() => session.attach({ audio: { sampleRate: 44_100.5, chunks: [] } }), 'BAD_INPUT', /sampleRate/);
    throws(() => session.attach({ audio: { sampleRate: RATE, chunks: [] }, turnTaking: 'auto' as never }), 'BAD_INPUT', /turnTaking/);
    throws(() => session.attach({ audio: { sampleRate: RATE, chunks: [] }, mic: true } as never), 'BAD_INPUT', /unknown option mic/);
    const [held, release] = moment();
    async function* source() {
      yield silence(0.3);
      await held;
    }
    const attachment = session.attach({ audio: { sampleRate: RATE, chunks: source() }, turnTaking: 'manual' });
    throws(() => session.attach({ audio: { sampleRate: RATE, chunks: [] } }), 'BAD_INPUT', /already has live inputs attached/);
    await pause(50);
    await expect(session.send({ text: 'hi' })).rejects.toThrow(/a live turn is open/);
    session.endTurn();
    const after = await session.send({ text: 'hi' });
    expect(after.ids.length).toBeGreaterThan(0);
    await attachment.detach();
    release();
    const again = session.attach({ audio: { sampleRate: RATE, chunks: [] } });
    await again.ended;
    await session.close();
  });

  it('barge-in: speech during a spoken reply stops it at once (turn end interrupted), and the new speech is the next turn, which answers', async () => {
    const session = omni.session({ maxNewTokens: 64, talker: { maxNewTokens: 2000 } });
    const [firstAudio, heard] = moment();
    const reader = collect(session, (event) => {
      if (event.type === 'audio') heard();
      // Turn 2 has answered once it speaks; cut it there to keep the test short.
      if (event.type === 'audio' && reader.events.some((e) => e.type === 'turn' && e.phase === 'start' && e.turn === 2)) session.interrupt();
    });
    const first = say('What time is it now?');
    const second = say('Wait, tell me about the sea instead.');
    const pcm = join32(silence(0.5), first, silence(1.5, 2), second, silence(1.5, 3));
    const secondAt = Math.round(0.5 * RATE) + first.length + Math.round(1.5 * RATE);
    // The user starts speaking again once the first reply is audible.
    const attachment = session.attach({ audio: { sampleRate: RATE, chunks: paced(pcm, 5, async (at) => { if (at >= secondAt) await firstAudio; }) } });
    await attachment.ended;
    await waitFor(reader, turnEnded(2), 'the second turn to end');
    await session.close();
    await reader.done;

    expect(ofType(reader.events, 'speech').map((e) => e.phase)).toEqual(['start', 'end', 'start', 'end']);
    const bargeIn = reader.events.indexOf(ofType(reader.events, 'speech')[2]);
    const firstTurn = reader.turn(1);
    const firstEnd = reader.events.indexOf(firstTurn.at(-1)!);
    expect(firstTurn.at(-1)).toMatchObject({ phase: 'end', interrupted: true });
    expect(ofType(firstTurn, 'audio').length).toBeGreaterThan(0);
    // Cut at once: the speech start came while turn 1 was still running, and no audio of it followed.
    expect(bargeIn).toBeLessThan(firstEnd);
    expect(ofType(reader.events.slice(bargeIn, firstEnd), 'audio')).toHaveLength(0);
    const secondTurn = reader.turn(2);
    expect(ofType(secondTurn, 'stats').at(-1)!.audioBlocks).toBeGreaterThanOrEqual(1);
    expect(ofType(secondTurn, 'text').length).toBeGreaterThan(0);
    expect(ofType(secondTurn, 'audio').length).toBeGreaterThan(0);
    expect(ofType(reader.events, 'error')).toEqual([]);
  });

  it('push-to-talk: with manual turn-taking a turn runs until endTurn(), speech events still reported', async () => {
    const session = omni.session({ speech: false, maxNewTokens: 3 });
    const reader = collect(session);
    const speech = say('One, two, three.');
    const [release, released] = moment();
    async function* mic() {
      yield* paced(join32(silence(0.3), speech, silence(0.3)), 10);
      released();
      await pause(10_000_000);
    }
    const attachment = session.attach({ audio: { sampleRate: RATE, chunks: mic() }, turnTaking: 'manual' });
    await release;
    session.endTurn();
    await waitFor(reader, turnEnded(1), 'the push-to-talk turn to end');
    await attachment.detach();
    await session.close();
    await reader.done;
    const turn = reader.turn(1);
    // The whole recording is the turn: 0.3 s + speech + 0.3 s (no detector trimming).
    expect(ofType(turn, 'stats').at(-1)!.audioMs).toBeCloseTo(600 + (1000 * speech.length) / RATE, 6);
    expect(turn.at(-1)).toMatchObject({ phase: 'end', interrupted: false });
    expect(ofType(reader.events, 'speech')[0]).toMatchObject({ phase: 'start' });
  });
});

describe('withdrawn live turns', () => {
  /**
   * Attaches `mic` with manual turn-taking; once `heard` settles (the turn's audio is all in:
   * audio arriving after the interruption opens the next turn) and a block of turn 1 is
   * prefilled, interrupts it and waits for its end.
   */
  async function interruptWhileHeard(session: OmniSession, reader: ReturnType<typeof collect>, mic: AsyncIterable<Float32Array>, heard: Promise<void>) {
    const attachment = session.attach({ audio: { sampleRate: RATE, chunks: mic }, turnTaking: 'manual' });
    await heard;
    await waitFor(reader, (events) => ofType(events, 'stats').some((s) => s.prefilledTokens > 0), 'a block of the turn to be prefilled');
    session.interrupt();
    await waitFor(reader, turnEnded(1), 'the interrupted turn to end');
    return attachment;
  }

  it('interrupt() while a push-to-talk turn is still heard withdraws it: the blocks it prefilled are forgotten', async () => {
    const session = omni.session({ speech: false, maxNewTokens: 4 });
    const reader = collect(session);
    const [allSent, sent] = moment();
    async function* mic() {
      yield* paced(join32(silence(0.3), say('Please forget what I am saying right now, it does not matter at all.')), 10);
      sent();
      await pause(10_000_000);
    }
    const attachment = await interruptWhileHeard(session, reader, mic(), allSent);
    await attachment.detach();
    const next = await session.send({ text: 'Hello!' });
    await session.close();
    await reader.done;
    expect(reader.turn(1).at(-1)).toMatchObject({ phase: 'end', interrupted: true, withdrawn: true, stats: { tokens: 0 } });
    // The conversation is as if the turn had never been: the next send renders the system turn again and answers the same.
    const fresh = omni.session({ speech: false, maxNewTokens: 4 });
    const want = await fresh.send({ text: 'Hello!' });
    await fresh.close();
    expect(next.stats.promptTokens).toBe(want.stats.promptTokens);
    expect(next.ids).toEqual(want.ids);
    expect(next.withdrawn).toBe(false);
    expect(ofType(reader.events, 'error')).toEqual([]);
  });

  it('after a withdrawn push-to-talk turn, the audio that follows is the next turn (nothing of it is kept for the dead one)', async () => {
    const session = omni.session({ speech: false, maxNewTokens: 3 });
    const reader = collect(session);
    const second = join32(say('And now the real question.'), silence(0.2));
    const [resumed, resume] = moment();
    const [release, released] = moment();
    const [first, firstSent] = moment();
    async function* mic() {
      yield* paced(join32(silence(0.3), say('Never mind this, I take it back, forget it please.')), 10);
      firstSent();
      await resumed;
      yield* paced(second, 10);
      released();
      await pause(10_000_000);
    }
    const attachment = await interruptWhileHeard(session, reader, mic(), first);
    resume();
    await release;
    session.endTurn();
    await waitFor(reader, turnEnded(2), 'the next turn to end');
    await attachment.detach();
    await session.close();
    await reader.done;
    expect(reader.turn(1).at(-1)).toMatchObject({ phase: 'end', interrupted: true, withdrawn: true });
    const turn = reader.turn(2);
    expect(turn.at(-1)).toMatchObject({ phase: 'end', interrupted: false, withdrawn: false });
    expect(ofType(turn, 'text').length).toBeGreaterThan(0);
    // The second turn heard exactly the audio sent after the interruption.
    expect(ofType(turn, 'stats').at(-1)!.audioMs).toBeCloseTo((1000 * second.length) / RATE, 6);
    expect(ofType(reader.events, 'error')).toEqual([]);
  });
});

describe('live turns with a camera and on workers', () => {
  function rgb(seed: number): RgbImage {
    const data = new Uint8Array(56 * 56 * 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + seed * 17) % 251;
    return { width: 56, height: 56, data };
  }

  /** One hands-free turn of `speech` with a 10 fps camera (frames come with the audio of their time); its events. */
  async function cameraTurn(model: Omni, speech: Float32Array) {
    const pcm = join32(silence(0.6), speech, silence(1.5, 2));
    let audioSeconds = 0;
    const session = model.session({ speech: false, maxNewTokens: 4 });
    const reader = collect(session);
    async function* camera(): AsyncGenerator<TimedFrame> {
      for (let k = 0; k < (pcm.length / RATE) * 10; k++) {
        while (audioSeconds < k / 10) await pause(2);
        yield { image: rgb(k), timestampSeconds: k / 10 };
      }
    }
    const attachment = session.attach({
      audio: { sampleRate: RATE, chunks: paced(pcm, 5, async (at) => { audioSeconds = at / RATE; }) },
      video: camera(),
    });
    await attachment.ended;
    await waitFor(reader, turnEnded(1), 'the camera turn to end');
    await session.close();
    await reader.done;
    return reader;
  }

  it('a camera turn: video patches are encoded and prefilled with the audio before the speech ends, and the turn replies', async () => {
    const reader = await cameraTurn(omni, say('Look at this, what do you see in front of you now?'));
    const speech = ofType(reader.events, 'speech');
    expect(speech.map((e) => e.phase)).toEqual(['start', 'end']);
    const before = ofType(reader.events.slice(0, reader.events.indexOf(speech[1])), 'stats').at(-1)!;
    expect(before.videoPatches).toBeGreaterThanOrEqual(2);
    expect(before.audioBlocks).toBeGreaterThanOrEqual(1);
    const turn = reader.turn(1);
    const last = ofType(turn, 'stats').at(-1)!;
    // One temporal patch (2 frames at 2 fps) per second of the turn's audio, nothing dropped at this pace.
    expect(last.videoPatches).toBe(Math.ceil(last.audioMs / 1000));
    expect(last.droppedVideoFrames).toBe(0);
    expect(turn.at(-1)).toMatchObject({ phase: 'end', interrupted: false });
    expect(ofType(reader.events, 'error')).toEqual([]);
  });

  it('runs on the worker pipeline (one worker per stage) with the same reply as in this thread', async () => {
    const speech = say('Good morning, is it going to rain?');
    const local = await cameraTurn(omni, speech);
    const workers = await Omni.load({ model: tiny.dir, device: 'wasm', pipeline: 'workers' });
    try {
      const remote = await cameraTurn(workers, speech);
      const ids = (r: typeof local) => ofType(r.turn(1), 'text').map((e) => e.id);
      expect(ids(remote)).toEqual(ids(local));
      const end = (r: typeof local) => r.turn(1).at(-1) as Extract<Of<'turn'>, { phase: 'end' }>;
      expect(end(remote).stats.promptTokens).toBe(end(local).stats.promptTokens);
      expect(ofType(remote.turn(1), 'stats').at(-1)!.videoPatches).toBeGreaterThan(0);
    } finally {
      await workers.close();
    }
  });
});

describe('a long live session', () => {
  it('10 minutes hands-free (accelerated) with a sink-window cache: every utterance answered, memory bounded, no stall', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const lines = ['Hello, how are you today?', 'Tell me a story about a cat.', 'What is two plus two?', 'Thanks, that is all for now.'].map((t) => say(t));
    const parts: Float32Array[] = [];
    const starts: number[] = [];
    let length = 0;
    for (let k = 0; length < 600 * RATE; k++) {
      const gap = silence(2, k + 1);
      starts.push(length + gap.length);
      parts.push(gap, lines[k % lines.length]);
      length += gap.length + lines[k % lines.length].length;
    }
    parts.push(silence(2, 999));
    const pcm = join32(...parts);
    const session = omni.session({ speech: false, maxNewTokens: 3, cache: { kind: 'sinkWindow', sink: 16, window: 512 } });
    const reader = collect(session);
    const ends = () => ofType(reader.events, 'turn').filter((e) => e.phase === 'end').length;
    /** JS heap + array buffers after a GC, by utterance index, every 5 utterances. */
    const memory = new Map<number, number>();
    let next = 0;
    const attachment = session.attach({
      audio: {
        sampleRate: RATE,
        // Each utterance waits for the answer to the one before (a polite user), then comes at 50× real time.
        chunks: paced(pcm, 50, async (at) => {
          if (next < starts.length && at >= starts[next]) {
            await waitFor(reader, () => ends() >= next, `the answer to utterance ${next}`, 60_000);
            if (next % 5 === 0) {
              gc();
              const m = process.memoryUsage();
              memory.set(next, m.heapUsed + m.arrayBuffers);
            }
            next++;
          }
        }),
      },
    });
    await attachment.ended;
    await waitFor(reader, () => ends() === starts.length, 'the last answer', 60_000);
    await session.close();
    await reader.done;

    const turns = ofType(reader.events, 'turn').filter((e): e is Extract<Of<'turn'>, { phase: 'end' }> => e.phase === 'end');
    expect(ofType(reader.events, 'speech').filter((e) => e.phase === 'start')).toHaveLength(starts.length);
    expect(turns).toHaveLength(starts.length);
    expect(turns.every((t) => !t.interrupted && t.stats.tokens > 0)).toBe(true);
    expect(ofType(reader.events, 'error')).toEqual([]);
    const fed = turns.reduce((n, t) => n + t.stats.promptTokens + t.stats.tokens, 0);
    // Far more than the cache holds went through it.
    expect(fed).toBeGreaterThan(10 * 528);
    // The floor of each stretch: a sample can catch a turn's transient buffers (~15 MiB seen),
    // while a leak raises every later sample.
    const floor = (from: number, to: number) => Math.min(...[...memory].filter(([k]) => k >= from && k < to).map(([, v]) => v));
    const growth = floor(starts.length - 20, starts.length) - floor(10, 30);
    console.log(`${starts.length} turns over ${(pcm.length / RATE).toFixed(0)} s of audio, ${fed} tokens through a 528-row cache; JS heap + buffers (lowest of every 5th turn) grew ${(growth / 2 ** 20).toFixed(1)} MiB from turns 10–30 to the last 20`);
    expect(growth).toBeLessThan(16 * 2 ** 20);
  }, 900_000);
});
