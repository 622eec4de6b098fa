/**
 * The pieces make-checkpoint streams with: core's streaming safetensors
 * writer and float encoder, and the seeded per-tensor random streams.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isOmniError } from '../../core/src/errors.js';
import { bf16ToF32, f16ToF32 } from '../../core/src/quant.js';
import {
  encodeFloat, fileSink, openSafetensors, planSafetensors, streamSafetensors, writeSafetensors, type ByteSink, type HostArray,
} from '../../core/src/weights/index.js';
import { CHUNK_ELEMENTS, normalStream, tensorChunks } from '../src/synthetic/random.js';

function memorySink(): ByteSink & { bytes(): Uint8Array } {
  const parts: Uint8Array[] = [];
  return {
    async write(bytes) { parts.push(bytes.slice()); },
    async close() {},
    bytes: () => Uint8Array.from(parts.flatMap((p) => [...p])),
  };
}

/** `bytes` cut into pieces of `size` (the last one shorter). */
function* pieces(bytes: Uint8Array, size: number): Generator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

async function failure(run: () => Promise<unknown> | unknown): Promise<Error & { code?: string }> {
  try {
    await run();
  } catch (e) {
    expect(isOmniError(e), String(e)).toBe(true);
    return e as Error & { code?: string };
  }
  throw new Error('expected a failure');
}

describe('streamSafetensors', () => {
  const arrays: [string, HostArray][] = [
    ['a', { dtype: 'f32', shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) }],
    ['empty', { dtype: 'f32', shape: [0, 4], data: new Float32Array(0) }],
    ['b', { dtype: 'f32', shape: [5], data: Float32Array.of(-1, 0.5, 7, 8, 9) }],
  ];

  for (const pieceSize of [1, 3, 1 << 20]) {
    it(`writes the same bytes as writeSafetensors, whatever the producers' piece size (${pieceSize})`, async () => {
      const sink = memorySink();
      const specs = arrays.map(([name, a]) => ({ name, dtype: 'F32' as const, shape: a.shape }));
      const length = await streamSafetensors(sink, specs, (_t, i) => pieces(encodeFloat('F32', arrays[i][1].data as Float32Array), pieceSize), { format: 'pt' });
      const expected = writeSafetensors(arrays, { format: 'pt' });
      expect(sink.bytes()).toEqual(expected);
      expect(length).toBe(expected.length);
    });
  }

  it('streams to a file that the reader opens, async producers included', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'omniweb-stream-'));
    try {
      const path = join(dir, 'x.safetensors');
      const sink = await fileSink(path);
      const values = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 3);
      try {
        await streamSafetensors(sink, [{ name: 'w', dtype: 'BF16', shape: [10, 100] }], async function* () {
          const bytes = encodeFloat('BF16', values);
          yield bytes.subarray(0, 999);
          yield bytes.subarray(999);
        });
      } finally {
        await sink.close();
      }
      const store = await openSafetensors(path);
      try {
        expect(store.info('w')).toMatchObject({ dtype: 'BF16', shape: [10, 100] });
        const back = await store.readF32('w');
        back.forEach((v, i) => expect(Math.abs(v - values[i])).toBeLessThanOrEqual(Math.abs(values[i]) * 2 ** -8));
      } finally {
        await store.close();
      }
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('refuses producers that yield too few or too many bytes, or not bytes', async () => {
    const spec = [{ name: 't', dtype: 'F32' as const, shape: [4] }];
    expect((await failure(() => streamSafetensors(memorySink(), spec, () => [new Uint8Array(12)]))).message)
      .toMatch(/t is F32 \[4\] \(16 bytes\) but its producer yielded 12/);
    expect((await failure(() => streamSafetensors(memorySink(), spec, () => [new Uint8Array(12), new Uint8Array(8)]))).message)
      .toMatch(/but its producer yielded more/);
    expect((await failure(() => streamSafetensors(memorySink(), spec, () => [[1, 2] as never]))).message).toMatch(/yielded a \[object Array\], not bytes/);
    expect((await failure(() => streamSafetensors(null as never, spec, () => []))).code).toBe('BAD_INPUT');
  });

  it('plans headers as the reader requires and refuses bad tensor lists', async () => {
    const plan = planSafetensors([{ name: 'x', dtype: 'BF16', shape: [3] }, { name: 'y', dtype: 'I64', shape: [2] }]);
    expect(plan.header.length % 8).toBe(0);
    expect(plan.tensors.map((t) => [t.begin, t.end])).toEqual([[0, 6], [6, 22]]);
    expect(plan.dataBytes).toBe(22);
    expect((await failure(() => planSafetensors([{ name: 'x', dtype: 'F32', shape: [1] }, { name: 'x', dtype: 'F32', shape: [1] }]))).message).toMatch(/"x" is empty, reserved or used twice/);
    expect((await failure(() => planSafetensors([{ name: '__metadata__', dtype: 'F32', shape: [1] }]))).code).toBe('BAD_INPUT');
    expect((await failure(() => planSafetensors([{ name: 'x', dtype: 'F64' as never, shape: [1] }]))).code).toBe('UNSUPPORTED_DTYPE');
    expect((await failure(() => planSafetensors([{ name: 'x', dtype: 'F32', shape: [-1] }]))).message).toMatch(/not a list of non-negative integers/);
    expect((await failure(() => planSafetensors([{ name: 'x', dtype: 'F32', shape: [2 ** 30, 2 ** 30] }]))).message).toMatch(/of safe size/);
    expect((await failure(() => planSafetensors('x' as never))).code).toBe('BAD_INPUT');
    expect((await failure(() => fileSink(''))).code).toBe('BAD_INPUT');
  });
});

describe('encodeFloat', () => {
  const bf16Of = (x: number) => new Uint16Array(encodeFloat('BF16', Float32Array.of(x)).buffer)[0];

  it('rounds to the nearest bf16, ties to even, and keeps NaN and infinities', () => {
    expect(bf16ToF32(bf16Of(1 + 2 ** -8))).toBe(1); // a tie: 1.0 has the even mantissa
    expect(bf16ToF32(bf16Of(1 + 3 * 2 ** -8))).toBe(1 + 2 ** -6); // a tie between mantissas 1 and 2: up to the even one
    expect(bf16ToF32(bf16Of(1 + 2 ** -8 + 2 ** -20))).toBe(1 + 2 ** -7); // past the tie: up
    expect(bf16ToF32(bf16Of(-2.5))).toBe(-2.5);
    expect(bf16ToF32(bf16Of(Infinity))).toBe(Infinity);
    expect(bf16ToF32(bf16Of(3.4028234e38))).toBe(Infinity); // above the largest bf16: overflows, as torch's cast does
    expect(Number.isNaN(bf16ToF32(bf16Of(NaN)))).toBe(true);
  });

  it('writes F16 through the half rounding and F32 as a fresh copy', () => {
    const values = Float32Array.of(0.1, -65504, 1e-7);
    const half = new Uint16Array(encodeFloat('F16', values).buffer);
    expect([...half].map(f16ToF32)).toEqual([0.0999755859375, -65504, 1.1920928955078125e-7]);
    const copy = encodeFloat('F32', values);
    expect(new Float32Array(copy.buffer)).toEqual(values);
    expect(copy.buffer).not.toBe(values.buffer);
    expect(() => encodeFloat('I32' as never, values)).toThrow(/not a float dtype/);
  });
});

describe('seeded weight streams', () => {
  it('give the same values however they are cut into chunks', () => {
    const whole = new Float32Array(10001);
    normalStream(3, 'w')(whole);
    const cut = new Float32Array(10001);
    const fill = normalStream(3, 'w');
    for (const [a, b] of [[0, 1], [1, 4], [4, 5], [5, 4000], [4000, 10001]]) fill(cut.subarray(a, b));
    expect(cut).toEqual(whole);
  });

  it('are standard normal, and differ by seed and by tensor name', () => {
    const x = new Float32Array(1 << 20);
    normalStream(0, 'thinker.model.embed_tokens.weight')(x);
    let sum = 0;
    let squares = 0;
    let beyond3 = 0;
    for (const v of x) { sum += v; squares += v * v; if (Math.abs(v) > 3) beyond3++; }
    expect(sum / x.length).toBeCloseTo(0, 2);
    expect(squares / x.length).toBeCloseTo(1, 2);
    // P(|z| > 3) = 0.27 % for a normal distribution.
    expect(beyond3 / x.length).toBeCloseTo(0.0027, 3);
    const other = (seed: number, key: string) => { const y = new Float32Array(8); normalStream(seed, key)(y); return y; };
    expect(other(0, 'a')).toEqual(other(0, 'a'));
    expect(other(0, 'a')).not.toEqual(other(1, 'a'));
    expect(other(0, 'a')).not.toEqual(other(0, 'b'));
  });

  it('produce a big tensor in bounded chunks with the planned scale', () => {
    const count = 2.5 * CHUNK_ELEMENTS;
    const chunks = [...tensorChunks({ name: 'm', shape: [count / 1024, 1024], init: { kind: 'normal', mean: 1, std: 0.5 } }, 'BF16', 9)];
    expect(chunks.map((c) => c.length)).toEqual([2 * CHUNK_ELEMENTS, 2 * CHUNK_ELEMENTS, CHUNK_ELEMENTS]);
    const values = chunks.flatMap((c) => [...new Uint16Array(c.buffer, c.byteOffset, c.length / 2)].map(bf16ToF32));
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
    expect(mean).toBeCloseTo(1, 2);
    expect(std).toBeCloseTo(0.5, 2);
    const fixed = [...tensorChunks({ name: 'f', shape: [2], init: { kind: 'values', values: Float32Array.of(0.25, 4) } }, 'F32', 0)];
    expect(fixed.map((c) => [...new Float32Array(c.buffer)])).toEqual([[0.25, 4]]);
  });
});
