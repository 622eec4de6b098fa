// `omniweb run` and `omniweb speak` end to end on a tiny synthetic checkpoint (wasm): one turn
// through the SDK, the reply's text on stdout (or a JSON summary), its speech in a 24 kHz WAV
// that decodes to 480 samples per codec code.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeWav, encodeWav } from '@omniweb/media';
import { DEFAULT_SHARD_BYTES, makeCheckpoint } from '../src/makeCheckpoint.js';
import { omniweb, type Run } from './cliProcess.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** The contract for bad input: exit 2 and exactly one `error: CODE: message` line. */
function expectBadInput(run: Run, code: string, message: RegExp): void {
  expect(run.code, run.stderr).toBe(2);
  const lines = run.stderr.trimEnd().split('\n');
  expect(lines.at(-1)).toMatch(new RegExp(`^error: ${code}: `));
  expect(lines.at(-1)).toMatch(message);
  expect(lines.filter((l) => l.startsWith('error:'))).toHaveLength(1);
}

/** PNG bytes of an RGB image (8-bit, no filtering): the file decodeImage reads for --image. */
function png(width: number, height: number, rgb: (x: number, y: number) => [number, number, number]): Uint8Array {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const chunk = (type: string, data: Uint8Array) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, 'latin1');
    out.set(data, 8);
    let crc = 0xffffffff;
    for (const byte of out.subarray(4, 8 + data.length)) crc = crcTable[(crc ^ byte) & 0xff] ^ (crc >>> 8);
    out.writeUInt32BE((crc ^ 0xffffffff) >>> 0, 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit, RGB, deflate, no filter method, no interlace
  const rows = Buffer.alloc(height * (1 + 3 * width));
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) rows.set(rgb(x, y), y * (1 + 3 * width) + 1 + 3 * x);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', header), chunk('IDAT', deflateSync(rows)), chunk('IEND', new Uint8Array(0))]);
}

/** A Y4M file (4:4:4, full planes) whose frames are flat grey levels. */
function y4m(width: number, height: number, fps: number, levels: number[]): Uint8Array {
  const parts: Uint8Array[] = [new TextEncoder().encode(`YUV4MPEG2 W${width} H${height} F${fps}:1 Ip A1:1 C444\n`)];
  for (const level of levels) parts.push(new TextEncoder().encode('FRAME\n'), new Uint8Array(width * height).fill(level), new Uint8Array(2 * width * height).fill(128));
  return Buffer.concat(parts);
}

let scratch: string;
let model: string;
beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'omniweb-run-'));
  model = join(scratch, 'tiny-omni');
  await makeCheckpoint({ shape: 'tiny', out: model, seed: 0, dtype: 'bf16', shardBytes: DEFAULT_SHARD_BYTES });
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('omniweb speak', () => {
  it('prints the reply and writes a 24 kHz mono WAV of 480 samples per codec code', async () => {
    const out = join(scratch, 'reply.wav');
    // Euler over 4 time points: 3 DiT evaluations per chunk instead of the reference's 36.
    const run = await omniweb('speak', '--model', model, '--text', 'Hello there!', '--voice', 'Ethan', '--max-new-tokens', '6', '--max-codes', '120', '--solver', 'euler', '--dit-steps', '4', '--out', out);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim().length).toBeGreaterThan(0);
    const summary = /reply\.wav: ([\d.]+) s of speech at 24000 Hz, (\d+) codec codes \(DiT: euler over 4 time points\)$/.exec(run.stderr.trimEnd().split('\n').at(-1)!);
    expect(summary, run.stderr).not.toBeNull();
    const codes = Number(summary![2]);
    expect(codes).toBeGreaterThan(0);
    const wav = decodeWav(readFileSync(out));
    expect(wav).toMatchObject({ sampleRate: 24000, channels: 1, encoding: 'pcm16' });
    expect(wav.samples.length).toBe(480 * codes);
    expect(Number(summary![1])).toBeCloseTo(wav.samples.length / 24000, 2);
    expect(wav.samples.some((x) => x !== 0)).toBe(true);
  });

  it('exits 2 with one error line for missing flags, an unknown voice and a flag run takes but speak does not', async () => {
    const out = join(scratch, 'never.wav');
    expectBadInput(await omniweb('speak', '--model', model, '--out', out), 'BAD_INPUT', /--text is required/);
    expectBadInput(await omniweb('speak', '--model', model, '--text', 'Hi'), 'BAD_INPUT', /--out is required/);
    expectBadInput(await omniweb('speak', '--model', model, '--text', 'Hi', '--out', out, '--voice', 'Nobody'), 'BAD_INPUT', /voice "Nobody" is not in spk_dict.pt; choose one of Chelsie, Ethan/);
    expectBadInput(await omniweb('speak', '--model', model, '--text', 'Hi', '--out', out, '--audio', 'x.wav'), 'BAD_INPUT', /unknown flag --audio/);
    expectBadInput(await omniweb('speak', '--model', model, '--text', 'Hi', '--out', out, '--max-codes', '0'), 'BAD_INPUT', /--max-codes 0 is not a positive integer/);
    expectBadInput(await omniweb('speak', '--model', model, '--text', 'Hi', '--out', out, '--solver', 'heun'), 'BAD_INPUT', /--solver heun is not one of rk4, midpoint, euler/);
    expectBadInput(await omniweb('speak', '--model', model, '--text', 'Hi', '--out', out, '--dit-steps', '1'), 'BAD_INPUT', /--dit-steps 1: steps must be an integer ≥ 2 \(time points\), got 1/);
  });
});

describe('omniweb run', () => {
  it('--json: one turn from text, a WAV, a PNG and a Y4M; ids, timings and peak memory', async () => {
    const tone = new Float32Array(32_000);
    for (let i = 0; i < tone.length; i++) tone[i] = 0.25 * Math.sin(i * 0.02);
    writeFileSync(join(scratch, 'in.wav'), encodeWav(tone, 16_000));
    writeFileSync(join(scratch, 'in.png'), png(60, 40, (x, y) => [4 * x, 6 * y, 128]));
    writeFileSync(join(scratch, 'in.y4m'), y4m(56, 56, 2, [40, 90, 140, 190]));
    const textOnly = await omniweb('run', '--model', model, '--text', 'What do you see?', '--max-new-tokens', '3', '--json');
    expect(textOnly.code, textOnly.stderr).toBe(0);
    const plain = JSON.parse(textOnly.stdout);
    const media = await omniweb('run', '--model', model, '--text', 'What do you see?', '--max-new-tokens', '3', '--json',
      '--audio', join(scratch, 'in.wav'), '--image', join(scratch, 'in.png'), '--video', join(scratch, 'in.y4m'));
    expect(media.code, media.stderr).toBe(0);
    const report = JSON.parse(media.stdout);
    expect(report).toMatchObject({ model, device: expect.stringMatching(/^wasm/), interrupted: false, speech: null });
    expect(report.ids.length).toBeGreaterThan(0);
    expect(report.ids.length).toBeLessThanOrEqual(3);
    expect(report.stats.tokens).toBe(report.ids.length);
    expect(report.stats.firstTextMs === null || report.stats.firstTextMs <= report.stats.totalMs).toBe(true);
    expect(report.stats.firstAudioMs).toBeNull();
    expect(report.peakRssBytes).toBeGreaterThan(1e6);
    // 2 s of audio: 50 tokens; the media add their placeholders' rows and bos/eos pairs.
    expect(report.stats.promptTokens).toBeGreaterThan(plain.stats.promptTokens + 50 + 6);
  });

  it('prints the answer as it streams and, with --out, writes the spoken reply', async () => {
    const out = join(scratch, 'run.wav');
    const run = await omniweb('run', '--model', model, '--text', 'Hi', '--max-new-tokens', '4', '--max-codes', '80', '--out', out);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.endsWith('\n')).toBe(true);
    expect(run.stderr).toMatch(/run\.wav: [\d.]+ s of speech at 24000 Hz/);
    const wav = decodeWav(readFileSync(out));
    expect(wav).toMatchObject({ sampleRate: 24000, channels: 1 });
    expect(wav.samples.length % 480).toBe(0);
    expect(wav.samples.length).toBeGreaterThan(0);
  });

  it('runs the wasm backend as its flags say', async () => {
    const run = await omniweb('run', '--model', model, '--text', 'Hi', '--max-new-tokens', '2', '--json',
      '--threads', '1', '--wasm-simd', 'baseline', '--quantized-activations', 'exact');
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).device).toBe('wasm simd128 (1 thread, exact q8/q4 GEMV activations)');
  });

  it('without --model: the embedded tiny checkpoint, made on first use', async () => {
    const run = await omniweb('run', '--text', 'Hi', '--max-new-tokens', '2', '--json');
    expect(run.code, run.stderr).toBe(0);
    const embedded = join(root, '.cache/tiny-omni');
    expect(JSON.parse(run.stdout).model).toBe(embedded);
    expect(existsSync(join(embedded, 'spk_dict.pt'))).toBe(true);
  });

  it('exits 2 with one error line for bad flags and unreadable files', async () => {
    expectBadInput(await omniweb('run', '--model', model), 'BAD_INPUT', /nothing to say/);
    expectBadInput(await omniweb('run', '--model', model, '--text', 'Hi', '--voice', 'Ethan'), 'BAD_INPUT', /--voice .* give --out too/);
    expectBadInput(await omniweb('run', '--model', model, '--text', 'Hi', '--solver', 'euler'), 'BAD_INPUT', /--solver and --dit-steps shape the spoken reply; give --out too/);
    expectBadInput(await omniweb('run', '--model', model, '--text', 'Hi', '--device', 'cuda'), 'BAD_INPUT', /--device cuda is not one of wasm, webgpu/);
    expectBadInput(await omniweb('run', '--model', model, '--text', 'Hi', '--loud'), 'BAD_INPUT', /unknown flag --loud/);
    expectBadInput(await omniweb('run', '--model', model, '--text', 'Hi', '--threads', 'two'), 'BAD_INPUT', /--threads two is not a positive integer/);
    expectBadInput(await omniweb('run', '--model', model, '--text', 'Hi', '--device', 'webgpu', '--wasm-simd', 'relaxed'), 'BAD_INPUT', /--wasm-simd sets the wasm backend; with --device webgpu it changes nothing/);
    expectBadInput(await omniweb('run', '--model', model, '--audio', join(scratch, 'absent.wav')), 'IO', /--audio .*absent\.wav/);
    expectBadInput(await omniweb('run', '--model', join(scratch, 'absent'), '--text', 'Hi'), 'IO', /absent/);
    writeFileSync(join(scratch, 'bad.wav'), 'not a wav');
    expectBadInput(await omniweb('run', '--model', model, '--audio', join(scratch, 'bad.wav')), 'BAD_INPUT', /not a RIFF\/WAVE file/);
  });
});
