// Sessions on the tiny synthetic checkpoint (wasm): text and spoken turns, interrupting, multi-turn,
// media, and bad input that leaves the session usable.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directoryFiles } from '@omniweb/core';
import { audioTokenCount } from '@omniweb/tmrope';
import { encodeWav, processImage, framesSource, videoFromSource, logMel, resample, type RgbImage } from '@omniweb/media';
import { loadTokenizer, type OmniTokenizer } from '@omniweb/tokenizer';
import { Omni, type OmniEvent } from '../src/index.js';
import { collect, makeTiny, rejects, throws } from './helpers.js';

let tiny: Awaited<ReturnType<typeof makeTiny>>;
let omni: Omni;
let tokenizer: OmniTokenizer;

beforeAll(async () => {
  tiny = await makeTiny();
  omni = await Omni.load({ model: tiny.dir, device: 'wasm' });
  tokenizer = await loadTokenizer(directoryFiles(tiny.dir));
});
afterAll(async () => {
  await omni?.close();
  tiny?.remove();
});

const SAMPLES_PER_CODE = 480; // 2 mel frames per code × BigVGAN hop 240 (fact sheet §8)

type Of<T extends OmniEvent['type']> = Extract<OmniEvent, { type: T }>;
const ofType = <T extends OmniEvent['type']>(events: OmniEvent[], type: T) => events.filter((e): e is Of<T> => e.type === type);

function rgb(width: number, height: number, seed: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + seed * 17) % 251;
  return { width, height, data };
}

describe('Omni.load', () => {
  it('loads every module of the tiny checkpoint, voices in spk_dict.pt order', () => {
    expect(omni.canSpeak).toBe(true);
    expect(omni.voices).toEqual(['Chelsie', 'Ethan']);
    expect(omni.device.kind).toBe('wasm');
  });

  it('reports progress module by module over the checkpoint\'s bytes, and honours an abort', async () => {
    const seen: string[] = [];
    let last = { bytesDone: 0, bytesTotal: 0 };
    const loaded = await Omni.load({
      model: tiny.dir, device: 'wasm', weights: { thinker: 'q8', talker: 'q4' },
      onProgress: (p) => {
        if (seen.at(-1) !== p.module) seen.push(p.module);
        expect(p.bytesDone).toBeGreaterThan(last.bytesDone);
        last = p;
      },
    });
    await loaded.close();
    expect(seen).toEqual(['thinker', 'audio', 'vision', 'talker', 'token2wav']);
    // Every tensor a module uses is read; buffers no module reads (the DiT's rotary inv_freq, …) are not.
    expect(last.bytesDone).toBeLessThanOrEqual(last.bytesTotal);
    expect(last.bytesDone).toBeGreaterThan(0.99 * last.bytesTotal);

    const abort = new AbortController();
    abort.abort();
    await rejects(Omni.load({ model: tiny.dir, device: 'wasm', signal: abort.signal }), 'ABORTED', /abort/);
  });

  it('refuses bad options with typed errors', async () => {
    await rejects(Omni.load(undefined as never), 'BAD_INPUT', /Omni.load takes/);
    await rejects(Omni.load({} as never), 'BAD_INPUT', /model is required/);
    await rejects(Omni.load({ model: tiny.dir, device: 'cuda' as never }), 'BAD_INPUT', /device must be/);
    await rejects(Omni.load({ model: tiny.dir, weights: 'q3' as never }), 'BAD_INPUT', /"q3" is not a weight format/);
    await rejects(Omni.load({ model: tiny.dir, weights: { thinker: 'q8', decoder: 'q4' } as never }), 'BAD_INPUT', /unknown module "decoder"/);
    await rejects(Omni.load({ model: tiny.dir, cpu: true } as never), 'BAD_INPUT', /unknown option cpu/);
    await rejects(Omni.load({ model: `${tiny.dir}/absent` }), 'IO', /absent/);
  });
});

describe('omni.session', () => {
  it('refuses bad options before any turn', () => {
    throws(() => omni.session({ voice: 'Nobody' }), 'BAD_INPUT', /voice "Nobody" is not in spk_dict.pt; choose one of Chelsie, Ethan/);
    throws(() => omni.session({ speech: false, voice: 'Ethan' }), 'BAD_INPUT', /speech is off/);
    throws(() => omni.session({ systemPrompt: 'You are a pirate.' }), 'BAD_INPUT', /fixed system prompt/);
    throws(() => omni.session({ maxNewTokens: 0 }), 'BAD_INPUT', /maxNewTokens 0/);
    throws(() => omni.session({ sampling: { temperature: -1 } }), 'BAD_INPUT', /temperature/);
    throws(() => omni.session({ talker: { maxNewTokens: 1.5 } }), 'BAD_INPUT', /talker.maxNewTokens 1.5/);
    throws(() => omni.session({ cache: { kind: 'plain', capacity: 0 } }), 'BAD_INPUT', /capacity/);
    throws(() => omni.session({ speak: true } as never), 'BAD_INPUT', /unknown option speak/);
    throws(() => omni.session({ synthesis: { solver: 'heun' as never } }), 'BAD_INPUT', /solver must be one of rk4, midpoint, euler/);
    throws(() => omni.session({ synthesis: { steps: 1 } }), 'BAD_INPUT', /steps must be an integer ≥ 2/);
    throws(() => omni.session({ synthesis: { seed: 0.5 } }), 'BAD_INPUT', /seed must be an integer, got 0.5/);
    throws(() => omni.session({ synthesis: { sway: 1 } as never }), 'BAD_INPUT', /unknown option sway/);
    throws(() => omni.session({ speech: false, synthesis: { solver: 'euler' } }), 'BAD_INPUT', /does not speak/);
  });
});

describe('a text turn', () => {
  it('streams one text event per reply token, then the turn end; the deltas join to the decoded reply', async () => {
    const session = omni.session({ speech: false, maxNewTokens: 6 });
    const reader = collect(session);
    const result = await session.send({ text: 'Hello! Describe what you can do.' });
    await session.close();
    await reader.done;
    const events = reader.turn(1);
    expect(events[0]).toEqual({ type: 'turn', phase: 'start', turn: 1 });
    const end = events.at(-1) as Of<'turn'> & { phase: 'end' };
    expect(end).toMatchObject({ phase: 'end', interrupted: false, stats: { tokens: result.ids.length, codes: 0, firstAudioMs: null } });
    const texts = ofType(events, 'text');
    const stops = new Set([tokenizer.tokenId('<|im_end|>'), tokenizer.tokenId('<|endoftext|>')]);
    expect(texts.map((e) => e.id)).toEqual(result.ids.filter((id) => !stops.has(id)));
    expect(result.ids.length).toBeGreaterThan(0);
    expect(texts.map((e) => e.text).join('')).toBe(result.text);
    expect(result.text).toBe(tokenizer.decode(result.ids, { skipSpecialTokens: true }));
    expect(ofType(events, 'audio')).toHaveLength(0);
    expect(end.stats.firstTextMs).toBeLessThanOrEqual(end.stats.totalMs);
    // The prompt is the chat template's rendering of the system and user turns.
    const prompt = tokenizer.encodeChat([{ role: 'system', content: 'You are a helpful assistant.' }, { role: 'user', content: 'Hello! Describe what you can do.' }]);
    expect(end.stats.promptTokens).toBe(prompt.length);
  });
});

describe('a spoken turn', () => {
  it('streams audio while the turn runs: 480 samples per codec code at 24 kHz, the first before the end', async () => {
    const session = omni.session({ voice: 'Ethan', maxNewTokens: 8, talker: { maxNewTokens: 150 } });
    const reader = collect(session);
    const result = await session.send({ text: 'Say something.' });
    await session.close();
    await reader.done;
    const events = reader.turn(1);
    const audio = ofType(events, 'audio');
    expect(result.stats.codes).toBeGreaterThan(72); // past the first streamed window of 72 mel frames
    expect(audio.length).toBeGreaterThan(1);
    expect(audio.every((e) => e.sampleRate === 24000)).toBe(true);
    expect(audio.reduce((n, e) => n + e.pcm.length, 0)).toBe(SAMPLES_PER_CODE * result.stats.codes);
    expect(events.indexOf(audio[0])).toBeLessThan(events.length - 1);
    expect(result.stats.firstAudioMs).toBeLessThan(result.stats.totalMs);
    for (const e of audio) for (const x of e.pcm) expect(Number.isFinite(x)).toBe(true);
  });

  it('is spoken by the voice asked for: another voice, other samples', async () => {
    const speak = async (voice: string) => {
      const session = omni.session({ voice, maxNewTokens: 4, talker: { maxNewTokens: 30, sampling: { temperature: 0 } } });
      const reader = collect(session);
      await session.send({ text: 'Hi' });
      await session.close();
      await reader.done;
      return ofType(reader.events, 'audio').flatMap((e) => Array.from(e.pcm));
    };
    const chelsie = await speak('Chelsie');
    expect(await speak('Chelsie')).toEqual(chelsie);
    expect(await speak('Ethan')).not.toEqual(chelsie);
  });

  it('synthesis options reach token2wav: euler gives other samples from the same codes, the reference solver the default ones', async () => {
    const speak = async (synthesis?: { solver: 'rk4' | 'euler' }) => {
      const session = omni.session({ maxNewTokens: 4, talker: { maxNewTokens: 30, sampling: { temperature: 0 } }, ...(synthesis && { synthesis }) });
      const reader = collect(session);
      const result = await session.send({ text: 'Hi' });
      await session.close();
      await reader.done;
      return { codes: result.stats.codes, pcm: ofType(reader.events, 'audio').flatMap((e) => Array.from(e.pcm)) };
    };
    const byDefault = await speak();
    const rk4 = await speak({ solver: 'rk4' });
    const euler = await speak({ solver: 'euler' });
    expect(byDefault.codes).toBeGreaterThan(0);
    expect(rk4).toEqual(byDefault);
    expect(euler.codes).toBe(byDefault.codes);
    expect(euler.pcm.length).toBe(byDefault.pcm.length);
    expect(euler.pcm).not.toEqual(byDefault.pcm);
  });

  it('interrupt mid-answer stops the audio at once; the next send works (and can be interrupted too)', async () => {
    const session = omni.session({ maxNewTokens: 64, talker: { maxNewTokens: 2000 } });
    // Interrupt each turn at its first audio event, and note where that was.
    const cuts: number[] = [];
    const reader = collect(session, (event) => {
      if (event.type === 'turn' && event.phase === 'start') cuts.push(-1);
      if (event.type === 'audio' && cuts.at(-1) === -1) {
        cuts[cuts.length - 1] = reader.events.length;
        session.interrupt();
      }
    });
    const started = performance.now();
    const first = await session.send({ text: 'Tell me a long story.' });
    const elapsed = performance.now() - started;
    const second = await session.send({ text: 'And now?' });
    await session.close();
    await reader.done;
    for (const [i, result] of [first, second].entries()) {
      const turn = reader.turn(i + 1);
      expect(result.interrupted).toBe(true);
      expect(turn.at(-1)).toMatchObject({ phase: 'end', interrupted: true });
      // 2000 codes would be 40 s of speech; far fewer were made, and none was spoken after the interrupt.
      expect(result.stats.codes).toBeLessThan(300);
      expect(ofType(turn, 'text').length).toBeGreaterThan(0);
      expect(ofType(reader.events.slice(cuts[i], reader.events.indexOf(turn.at(-1)!)), 'audio')).toHaveLength(0);
    }
    console.log(`interrupted after the first audio: the turn ended ${(elapsed - first.stats.firstAudioMs!).toFixed(0)} ms later`);
    expect(elapsed - first.stats.firstAudioMs!).toBeLessThan(5000);
  });
});

describe('conversation state', () => {
  it('a failed send leaves the session as it was: the next reply equals a fresh session\'s', async () => {
    const fresh = omni.session({ speech: false, maxNewTokens: 5 });
    const expected = await fresh.send({ text: 'Hi there' });
    await fresh.close();

    const session = omni.session({ speech: false, maxNewTokens: 5 });
    const reader = collect(session);
    await rejects(session.send(undefined as never), 'BAD_INPUT', /send takes an object/);
    await rejects(session.send({}), 'BAD_INPUT', /nothing to say/);
    await rejects(session.send({ text: 42 } as never), 'BAD_INPUT', /text must be a string/);
    await rejects(session.send({ txt: 'hi' } as never), 'BAD_INPUT', /unknown field txt/);
    await rejects(session.send({ text: 'a', ids: [1] }), 'BAD_INPUT', /either text .* or ids/);
    await rejects(session.send({ audio: { samples: [0.1, 0.2] as never, sampleRate: 16000 } }), 'BAD_INPUT', /Float32Array/);
    await rejects(session.send({ audio: new Uint8Array([1, 2, 3, 4]) }), 'BAD_INPUT', /RIFF/);
    await rejects(session.send({ audio: { samples: new Float32Array(16), sampleRate: 16000 } }), 'BAD_INPUT', /at least 3/);
    await rejects(session.send({ image: new Uint8Array([1, 2, 3]) }), 'BAD_INPUT', /PNG|JPEG|image/);
    await rejects(session.send({ image: { width: 2, height: 2, data: new Uint8Array(5) } }), 'BAD_INPUT', /12/);
    await rejects(session.send({ video: { frames: [], fps: 2 } }), 'BAD_INPUT', /non-empty/);
    await rejects(session.send({ ids: [151646] }), 'BAD_INPUT', /placeholder|audio/);
    await rejects(session.send({ ids: [10, 999_999_999] }), 'BAD_INPUT', /vocabulary/);
    const after = await session.send({ text: 'Hi there' });
    await session.close();
    await reader.done;
    expect(after.ids).toEqual(expected.ids);
    expect(after.text).toBe(expected.text);
    // Each failure was reported as an error event inside its own turn.
    const errors = ofType(reader.events, 'error');
    expect(errors).toHaveLength(13);
    expect(errors.every((e) => e.error.code === 'BAD_INPUT')).toBe(true);
    expect(reader.turn(14).at(-1)).toMatchObject({ phase: 'end', interrupted: false });
  });

  it('later turns continue from the cache: a second turn feeds only its own messages', async () => {
    const session = omni.session({ speech: false, maxNewTokens: 3 });
    const first = await session.send({ text: 'One.' });
    const second = await session.send({ text: 'Two.' });
    await expect(session.send({ text: 'Three.' })).resolves.toMatchObject({ interrupted: false });
    await session.close();
    // The reply's unfed last token (when it is no stop token), the end of that message, then the user turn.
    const tail = tokenizer.encode('<|im_end|>\n<|im_start|>user\nTwo.<|im_end|>\n<|im_start|>assistant\n').length;
    const stops = new Set([tokenizer.tokenId('<|im_end|>'), tokenizer.tokenId('<|endoftext|>')]);
    expect(second.stats.promptTokens).toBe(tail + (stops.has(first.ids.at(-1)!) ? 0 : 1));
    await rejects(session.send({ text: 'Four.' }), 'BAD_INPUT', /closed/);
  });

  it('turns with audio, an image and a video: each placeholder expanded to its encoder\'s rows', async () => {
    const session = omni.session({ speech: false, maxNewTokens: 2 });
    const base = await session.send({ text: 'Look.' });
    const tone = new Float32Array(24_000);
    for (let i = 0; i < tone.length; i++) tone[i] = 0.3 * Math.sin(i * 0.05);
    const image = rgb(84, 56, 1);
    const frames = [0, 1, 2, 3].map((k) => rgb(56, 56, k));
    const media = await session.send({ text: 'Look.', audio: encodeWav(tone, 24_000), image, video: { frames, fps: 2 } });
    await session.close();
    const melFrames = logMel(resample(tone, 24_000, 16_000)).validFrames;
    const grid = processImage(image).gridThw;
    const video = videoFromSource(framesSource(frames, 2)).gridThw;
    const tokens = audioTokenCount(melFrames) + (grid[0] * grid[1] * grid[2]) / 4 + (video[0] * video[1] * video[2]) / 4;
    // Each item adds bos, its rows and eos; the second turn adds the previous reply's close as well.
    const stops = new Set([tokenizer.tokenId('<|im_end|>'), tokenizer.tokenId('<|endoftext|>')]);
    const close = tokenizer.encode('<|im_end|>\n').length + (stops.has(base.ids.at(-1)!) ? 0 : 1);
    const userTurn = tokenizer.encode('<|im_start|>user\nLook.<|im_end|>\n<|im_start|>assistant\n').length;
    expect(media.stats.promptTokens).toBe(close + userTurn + 3 * 2 + tokens);
    expect(media.ids.length).toBe(2);
  });
});
