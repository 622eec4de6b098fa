// The oracle checked against values worked out by hand (or from published tables),
// so that the reference every kernel is measured against is itself measured.
import { describe, expect, it } from 'vitest';
import { isOmniError, quantize, toF16Array, f16ToF32, type Tensor } from '@omniweb/core';
import { createOracleBackend, erf, erfc } from '@omniweb/kernels';

const oracle = createOracleBackend();
const t = (values: number[], shape: number[]) => oracle.tensor(Float32Array.from(values), shape);
const ids = (values: number[], shape: number[]) => oracle.tensor(Int32Array.from(values), shape);
const read = async (x: Tensor) => Array.from(await oracle.read(x));

function expectClose(actual: number[], expected: number[], tol = 1e-6) {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => expect(Math.abs(a - expected[i])).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(expected[i]))));
}

function expectError(f: () => unknown, code: Parameters<typeof isOmniError>[1]) {
  try {
    f();
  } catch (e) {
    expect(isOmniError(e, code), String(e)).toBe(true);
    return;
  }
  throw new Error(`expected OmniError ${code}`);
}

describe('erf', () => {
  // Values from Abramowitz & Stegun table 7.1 and standard erfc tables.
  it.each([
    [0.1, 0.1124629160182849], [0.5, 0.5204998778130465], [1, 0.8427007929497149],
    [2, 0.9953222650189527], [3, 0.9999779095030014],
  ])('erf(%f)', (x, value) => {
    expect(Math.abs(erf(x) - value) / value).toBeLessThan(1e-13);
    expect(Math.abs(erf(-x) + value) / value).toBeLessThan(1e-13);
  });
  it.each([[3, 2.209049699858544e-5], [5, 1.5374597944280349e-12], [2.4, 6.885138966450786e-4]])('erfc(%f) keeps relative accuracy', (x, value) => {
    expect(Math.abs(erfc(x) - value) / value).toBeLessThan(1e-12);
  });
});

describe('oracle ops on hand-worked values', () => {
  it('linear with bias, f32 and f16 weights', async () => {
    const w = { format: 'f32' as const, rows: 2, cols: 3, data: Float32Array.from([1, 2, 3, -1, 0, 0.5]) };
    const x = t([1, 1, 1, 2, 0, -2], [2, 3]);
    expectClose(await read(oracle.linear(x, oracle.weight(w), t([10, 20], [2]))), [16, 19.5, 6, 17]);
    const w16 = oracle.weight({ format: 'f16', rows: 2, cols: 3, data: toF16Array(w.data) });
    expectClose(await read(oracle.linear(x, w16)), [6, -0.5, -4, -3]);
  });

  it('q4 weight dequantizes to its grid', async () => {
    const q = quantize(Float32Array.from([7, -7, 3.5, 0]), 1, 4, 'q4');
    expectClose(await read(oracle.linear(t([1, 0, 0, 0, 0, 0, 1, 0], [2, 4]), oracle.weight(q))), [7, 4]);
  });

  it('matmul plain and transposed', async () => {
    const a = t([1, 2, 3, 4], [2, 2]);
    expectClose(await read(oracle.matmul(a, t([5, 6, 7, 8], [2, 2]))), [19, 22, 43, 50]);
    expectClose(await read(oracle.matmul(a, t([5, 6, 7, 8], [2, 2]), { transposeB: true })), [17, 23, 39, 53]);
  });

  it('rmsnorm, layernorm, softmax, argmax', async () => {
    expectClose(await read(oracle.rmsnorm(t([3, 4], [1, 2]), t([1, 2], [2]), 0)), [3 / Math.sqrt(12.5), 8 / Math.sqrt(12.5)]);
    expectClose(await read(oracle.layernorm(t([1, 3], [1, 2]), t([2, 2], [2]), t([1, 1], [2]), 0)), [-1, 3]);
    expectClose(await read(oracle.layernorm(t([1, 3], [1, 2]), null, null, 0)), [-1, 1]);
    const e = Math.E;
    expectClose(await read(oracle.softmax(t([0, 1, 1000, 1000], [2, 2]))), [1 / (1 + e), e / (1 + e), 0.5, 0.5]);
    expect(await read(oracle.argmax(t([1, 5, 5, 2, -1, -3], [2, 3])))).toEqual([1, 0]);
  });

  it('silu, gelu, broadcast add and mul', async () => {
    expectClose(await read(oracle.siluMul(t([0, 2], [2]), t([5, 3], [2]))), [0, 3 * 2 / (1 + Math.exp(-2))]);
    expectClose(await read(oracle.gelu(t([1], [1]), 'erf')), [0.8413447460685429]);
    expectClose(await read(oracle.gelu(t([1], [1]), 'tanh')), [0.5 * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * 1.044715))]);
    expectClose(await read(oracle.add(t([1, 2, 3, 4], [2, 2]), t([10, 20], [2]))), [11, 22, 13, 24]);
    expectClose(await read(oracle.mul(t([1, 2, 3, 4], [2, 2]), t([1, 0, 2, 3], [2, 2]))), [1, 0, 6, 12]);
  });

  it('embedding, gatherRows, transpose, avgPoolRows, copy, reshape', async () => {
    const table = oracle.weight({ format: 'f32', rows: 3, cols: 2, data: Float32Array.from([0, 1, 2, 3, 4, 5]) });
    expect(await read(oracle.embedding(table, Int32Array.from([2, 0, 2])))).toEqual([4, 5, 0, 1, 4, 5]);
    expect(await read(oracle.gatherRows(ids([1, 2, 3, 4], [2, 2]), ids([1, 1, 0], [3])))).toEqual([3, 4, 3, 4, 1, 2]);
    expect(await read(oracle.transpose(t([1, 2, 3, 4, 5, 6], [2, 3])))).toEqual([1, 4, 2, 5, 3, 6]);
    expect(await read(oracle.avgPoolRows(t([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [5, 2]), 2))).toEqual([2, 3, 6, 7]);
    const dst = t([0, 0, 0, 0], [4]);
    oracle.copy(t([7, 8, 9], [3]), dst, 1, 2, 2);
    expect(await read(dst)).toEqual([0, 0, 8, 9]);
    const view = oracle.reshape(dst, [2, 2]);
    oracle.copy(t([1], [1]), view, 0, 0, 1);
    expect(await read(dst)).toEqual([1, 0, 8, 9]);
  });

  it('rotary half and interleaved, only the first heads', async () => {
    // One frequency of 1 rad per position, headDim 4 (rotaryDim 2): dims 2 and 3 pass through.
    const rope = { invFreq: Float32Array.from([Math.PI / 2]), stream: Int32Array.from([0]), style: 'half' as const, heads: 1 };
    const x = t([1, 0, 5, 6, 1, 0, 5, 6], [1, 2, 4]);
    const y = await read(oracle.rotary(x, ids([1], [1, 1]), rope));
    expectClose(y, [0, 1, 5, 6, 1, 0, 5, 6]);
    const inter = { ...rope, style: 'interleaved' as const, heads: undefined };
    const z = oracle.rotary(x, ids([1], [1, 1]), inter, x);
    expectClose(await read(z), [0, 1, 5, 6, 0, 1, 5, 6]);
  });

  it('attention: uniform scores average v; causal and GQA pick the right rows', async () => {
    const q = t([0, 0, 0, 0], [2, 1, 2]);
    const k = t([1, 2, 3, 4, 5, 6], [3, 1, 2]);
    const v = t([1, 10, 2, 20, 3, 30], [3, 1, 2]);
    expectClose(await read(oracle.attention(q, k, v, { mask: { kind: 'none' } })), [2, 20, 2, 20]);
    expectClose(await read(oracle.attention(q, k, v, { mask: { kind: 'causal', queryStart: 0 } })), [1, 10, 1.5, 15]);
    expectClose(await read(oracle.attention(q, k, v, { kvLength: 2, mask: { kind: 'causal', queryStart: 0 } })), [1, 10, 1.5, 15]);
    expectClose(await read(oracle.attention(q, k, v, { mask: { kind: 'causal', queryStart: 1 } })), [1.5, 15, 2, 20]);
    // 2 query heads share 1 kv head.
    const q2 = t([0, 0, 0, 0], [1, 2, 2]);
    expectClose(await read(oracle.attention(q2, k, v, { kvLength: 2, mask: { kind: 'none' } })), [1.5, 15, 1.5, 15]);
    const q3 = t([0, 0, 0, 0, 0, 0], [3, 1, 2]);
    expectClose(await read(oracle.attention(q3, k, v, { mask: { kind: 'segments', bounds: Int32Array.from([0, 1, 3]) } })), [1, 10, 2.5, 25, 2.5, 25]);
    expectClose(await read(oracle.attention(q3, k, v, { mask: { kind: 'blockWindow', blockSize: 1, back: 0, ahead: 1 } })), [1.5, 15, 2.5, 25, 3, 30]);
    // Scores: a large key dominates.
    const qs = t([100, 0], [1, 1, 2]);
    expectClose(await read(oracle.attention(qs, k, v, { scale: 1, mask: { kind: 'none' } })), [3, 30]);
  });

  it('conv1d with reflect padding, stride and dilation', async () => {
    // x = [1, 2, 3, 4] (Cin 1), kernel [1, 0, -1]; reflect pad 1 → [2, 1, 2, 3, 4, 3], pad 2 → [3, 2, 1, 2, 3, 4, 3, 2].
    const x = t([1, 2, 3, 4], [4, 1]);
    const w = oracle.weight({ format: 'f32', rows: 1, cols: 3, data: Float32Array.from([1, 0, -1]) });
    expect(await read(oracle.conv1d(x, w, null, { kernel: 3, padding: 1, padMode: 'reflect' }))).toEqual([0, -2, -2, 0]);
    expect(await read(oracle.conv1d(x, w, t([1], [1]), { kernel: 3, padding: 1, stride: 2 }))).toEqual([-1, -1]);
    expect(await read(oracle.conv1d(x, w, null, { kernel: 3, padding: 2, dilation: 2, padMode: 'reflect' }))).toEqual([3 - 3, 2 - 4, 1 - 3, 2 - 2]);
  });

  it('validates like a device backend', () => {
    const x = t([1, 2, 3, 4, 5, 6], [2, 3]);
    const w = oracle.weight({ format: 'f32', rows: 2, cols: 2, data: new Float32Array(4) });
    expectError(() => oracle.linear(x, w), 'SHAPE_MISMATCH');
    expectError(() => oracle.linear(ids([1, 2], [1, 2]), w), 'WRONG_DTYPE');
    expectError(() => oracle.add(x, t([1, 2], [2])), 'SHAPE_MISMATCH');
    expectError(() => oracle.softmax(x, oracle.empty([3, 2])), 'SHAPE_MISMATCH');
    expectError(() => oracle.argmax(x, oracle.empty([2])), 'WRONG_DTYPE');
    expectError(() => oracle.add(x, x, x), 'BAD_INPUT');
    expectError(() => oracle.tensor(new Float32Array(5), [2, 3]), 'SHAPE_MISMATCH');
    expectError(() => oracle.reshape(x, [4]), 'SHAPE_MISMATCH');
    expectError(() => oracle.embedding(w, Int32Array.from([2])), 'BAD_INPUT');
    expectError(() => oracle.weight({ format: 'q8', rows: 1, cols: 40, paddedCols: 40, data: new Uint8Array(40), scales: new Float32Array(1) }), 'SHAPE_MISMATCH');
    expectError(() => oracle.attention(t([0, 0], [1, 1, 2]), t([0, 0, 0, 0], [1, 2, 2]), t([0, 0, 0, 0], [1, 2, 2]), { mask: { kind: 'none' } }), 'SHAPE_MISMATCH');
    const gone = t([1], [1]);
    oracle.dispose(gone);
    expectError(() => oracle.softmax(gone), 'BAD_INPUT');
  });

  it('fresh tensors are poisoned, not zero', async () => {
    expect((await read(oracle.empty([3]))).every(Number.isNaN)).toBe(true);
    expect(f16ToF32(toF16Array(Float32Array.from([0.5]))[0])).toBe(0.5);
  });
});
