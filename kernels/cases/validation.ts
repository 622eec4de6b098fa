/**
 * Argument checks: every backend must refuse wrong shapes and dtypes with the codes the
 * interface promises, before queueing work, and keep working afterwards.
 */
import { isOmniError, quantize, type Backend, type LinearPart, type OmniErrorCode, type ResampleFilters, type UnaryFunction } from '@omniweb/core';
import { compare, defineCase, type KernelCase } from './harness.js';

type Misuse = [label: string, code: OmniErrorCode, call: (be: Backend) => unknown];

const filters = (be: Backend, up: number, down: number): ResampleFilters => ({ up: be.empty([up]), down: be.empty([down]) });

const MISUSES: readonly Misuse[] = [
  ['tensor with fewer values than its shape', 'SHAPE_MISMATCH', (be) => be.tensor(new Float32Array(5), [2, 3])],
  ['reshape to another size', 'SHAPE_MISMATCH', (be) => be.reshape(be.empty([2, 3]), [7])],
  ['copy between f32 and i32', 'WRONG_DTYPE', (be) => be.copy(be.empty([4]), be.empty([4], 'i32'), 0, 0, 4)],
  ['linear with x of the wrong width', 'SHAPE_MISMATCH', (be) =>
    be.linear(be.empty([2, 5]), be.weight({ format: 'f32', rows: 3, cols: 4, data: new Float32Array(12) }))],
  ['linear with an i32 x', 'WRONG_DTYPE', (be) =>
    be.linear(be.empty([1, 4], 'i32'), be.weight({ format: 'f32', rows: 3, cols: 4, data: new Float32Array(12) }))],
  ['linear with a bias of the wrong length', 'SHAPE_MISMATCH', (be) =>
    be.linear(be.empty([1, 4]), be.weight({ format: 'f32', rows: 3, cols: 4, data: new Float32Array(12) }), be.empty([4]))],
  ['linears without parts', 'BAD_INPUT', (be) => be.linears(be.empty([1, 4]), [])],
  ['linears with a part without an out', 'BAD_INPUT', (be) =>
    be.linears(be.empty([1, 4]), [{ w: be.weight({ format: 'f32', rows: 3, cols: 4, data: new Float32Array(12) }) } as unknown as LinearPart])],
  ['linears with a weight of another width', 'SHAPE_MISMATCH', (be) => {
    const w = (cols: number) => be.weight({ format: 'f32', rows: 3, cols, data: new Float32Array(3 * cols) });
    return be.linears(be.empty([1, 4]), [{ w: w(4), out: be.empty([1, 3]) }, { w: w(5), out: be.empty([1, 3]) }]);
  }],
  ['linears with one out for two parts', 'BAD_INPUT', (be) => {
    const w = be.weight({ format: 'f32', rows: 3, cols: 4, data: new Float32Array(12) });
    const out = be.empty([1, 3]);
    return be.linears(be.empty([1, 4]), [{ w, out }, { w, out }]);
  }],
  ['linears writing into x', 'BAD_INPUT', (be) => {
    const x = be.empty([1, 4]);
    return be.linears(x, [{ w: be.weight({ format: 'f32', rows: 4, cols: 4, data: new Float32Array(16) }), out: x }]);
  }],
  ['q8 weight with too few scales', 'SHAPE_MISMATCH', (be) => {
    const m = quantize(new Float32Array(2 * 40), 2, 40, 'q8');
    return be.weight({ ...m, scales: m.scales.subarray(0, 3) });
  }],
  ['matmul of shapes that do not chain', 'SHAPE_MISMATCH', (be) => be.matmul(be.empty([2, 3]), be.empty([4, 5]))],
  ['rmsnorm with a weight of the wrong length', 'SHAPE_MISMATCH', (be) => be.rmsnorm(be.empty([2, 8]), be.empty([7]), 1e-6)],
  ['softmax into an out of the wrong shape', 'SHAPE_MISMATCH', (be) => be.softmax(be.empty([2, 8]), be.empty([8, 2]))],
  ['argmax into an f32 out', 'WRONG_DTYPE', (be) => be.argmax(be.empty([2, 8]), be.empty([2]))],
  ['add of a row that does not broadcast', 'SHAPE_MISMATCH', (be) => be.add(be.empty([3, 4]), be.empty([3]))],
  ['siluMul of different shapes', 'SHAPE_MISMATCH', (be) => be.siluMul(be.empty([3, 4]), be.empty([4, 3]))],
  ['embedding with f32 ids', 'WRONG_DTYPE', (be) =>
    be.embedding(be.weight({ format: 'f32', rows: 3, cols: 4, data: new Float32Array(12) }), be.empty([2]))],
  ['rotary with f32 positions', 'WRONG_DTYPE', (be) =>
    be.rotary(be.empty([2, 1, 4]), be.empty([1, 2]), { invFreq: new Float32Array(2), stream: new Int32Array(2), style: 'half' })],
  ['rotary with positions for another T', 'SHAPE_MISMATCH', (be) =>
    be.rotary(be.empty([2, 1, 4]), be.empty([1, 3], 'i32'), { invFreq: new Float32Array(2), stream: new Int32Array(2), style: 'half' })],
  ['attention with Hq not a multiple of Hkv', 'SHAPE_MISMATCH', (be) =>
    be.attention(be.empty([1, 3, 8]), be.empty([4, 2, 8]), be.empty([4, 2, 8]), { mask: { kind: 'none' } })],
  ['attention with kvLength beyond the cache', 'SHAPE_MISMATCH', (be) =>
    be.attention(be.empty([1, 2, 8]), be.empty([4, 2, 8]), be.empty([4, 2, 8]), { kvLength: 5, mask: { kind: 'none' } })],
  ['attention with k and v of different shapes', 'SHAPE_MISMATCH', (be) =>
    be.attention(be.empty([1, 2, 8]), be.empty([4, 2, 8]), be.empty([5, 2, 8]), { mask: { kind: 'none' } })],
  ['conv1d with a weight for another kernel', 'SHAPE_MISMATCH', (be) =>
    be.conv1d(be.empty([9, 2]), be.weight({ format: 'f32', rows: 3, cols: 8, data: new Float32Array(24) }), null, { kernel: 3 })],
  ['transpose into an out that is not transposed', 'SHAPE_MISMATCH', (be) => be.transpose(be.empty([2, 3]), be.empty([2, 3]))],
  ['unary with an unknown function', 'BAD_INPUT', (be) => be.unary(be.empty([4]), { kind: 'gelu' } as unknown as UnaryFunction)],
  ['unary clamp with min above max', 'BAD_INPUT', (be) => be.unary(be.empty([4]), { kind: 'clamp', min: 1, max: 0 })],
  ['unary clamp with a NaN bound', 'BAD_INPUT', (be) => be.unary(be.empty([4]), { kind: 'clamp', min: NaN, max: 0 })],
  ['unary affine with an infinite scale', 'BAD_INPUT', (be) => be.unary(be.empty([4]), { kind: 'affine', scale: Infinity, shift: 0 })],
  ['unary of an i32 x', 'WRONG_DTYPE', (be) => be.unary(be.empty([4], 'i32'), { kind: 'relu' })],
  ['snakeBeta of a rank-3 x', 'SHAPE_MISMATCH', (be) => be.snakeBeta(be.empty([4, 2, 3]), be.empty([3]), be.empty([3]), filters(be, 12, 12))],
  ['snakeBeta with alphaLog of another width', 'SHAPE_MISMATCH', (be) => be.snakeBeta(be.empty([4, 3]), be.empty([2]), be.empty([3]), filters(be, 12, 12))],
  ['snakeBeta with betaLog of another width', 'SHAPE_MISMATCH', (be) => be.snakeBeta(be.empty([4, 3]), be.empty([3]), be.empty([4]), filters(be, 12, 12))],
  ['snakeBeta with an odd up filter', 'SHAPE_MISMATCH', (be) => be.snakeBeta(be.empty([4, 3]), be.empty([3]), be.empty([3]), filters(be, 11, 12))],
  ['snakeBeta with a 2-tap up filter', 'SHAPE_MISMATCH', (be) => be.snakeBeta(be.empty([4, 3]), be.empty([3]), be.empty([3]), filters(be, 2, 12))],
  ['snakeBeta with an odd down filter', 'SHAPE_MISMATCH', (be) => be.snakeBeta(be.empty([4, 3]), be.empty([3]), be.empty([3]), filters(be, 12, 5))],
  ['snakeBeta without filters', 'BAD_INPUT', (be) => be.snakeBeta(be.empty([4, 3]), be.empty([3]), be.empty([3]), null as unknown as ResampleFilters)],
  ['snakeBeta of an i32 x', 'WRONG_DTYPE', (be) => be.snakeBeta(be.empty([4, 3], 'i32'), be.empty([3]), be.empty([3]), filters(be, 12, 12))],
];

/** Bound 0: the error is the number of misuses refused wrongly (each is named in the thrown message). */
export const validationCases: KernelCase[] = [
  defineCase('validation/wrong shapes and dtypes are refused', 'validation', 0, async (backend, oracle) => {
    const wrong: string[] = [];
    for (const [label, code, call] of MISUSES) {
      for (const [who, be] of [['backend', backend], ['oracle', oracle]] as const) {
        try {
          call(be);
          wrong.push(`${who}: ${label}: no error`);
        } catch (e) {
          if (!isOmniError(e, code)) wrong.push(`${who}: ${label}: expected OmniError ${code}, got ${String(e)}`);
        }
      }
    }
    if (wrong.length > 0) throw new Error(`${wrong.length} misuses not refused as promised:\n${wrong.join('\n')}`);
    // Still usable after refusing: one small op matches.
    const sum = async (be: Backend) => be.read(be.add(be.tensor(Float32Array.of(1, 2), [2]), be.tensor(Float32Array.of(3, 4), [2])));
    return compare(await sum(backend), await sum(oracle));
  }),
  // Bound 0: the error counts the outputs of the valid first part that were written anyway.
  defineCase('validation/linears runs no part when a later part is refused', 'validation', 0, async (backend) => {
    const w = backend.weight({ format: 'f32', rows: 3, cols: 4, data: new Float32Array(12).fill(1) });
    const first = backend.tensor(new Float32Array(3).fill(NaN), [1, 3]);
    try {
      backend.linears(backend.tensor(Float32Array.of(1, 2, 3, 4), [1, 4]), [{ w, out: first }, { w, out: backend.empty([1, 4]) }]);
    } catch (e) {
      if (!isOmniError(e, 'SHAPE_MISMATCH')) throw e;
      return [...(await backend.read(first))].filter((v) => !Number.isNaN(v)).length;
    }
    throw new Error('linears took an out of the wrong shape');
  }),
];
