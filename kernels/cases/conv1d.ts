/** conv1d over time-major x [L, Cin]: zero and reflect padding, stride, dilation, every weight format. */
import type { Backend, Conv1dOptions, HostMatrix, Tensor } from '@omniweb/core';
import {
  absolute, compare, defineCase, hostMatrix, matrixValues, poisoned, seedOf, seededRandom, uniform, variantName,
  weightBound, type KernelCase, type WeightVariant,
} from './harness.js';

/** Sums over Cin·kernel ≤ 384 terms, judged against Σ|x||w| + |b| as in linear. */
const BOUND = 1e-5;

interface ConvShape { L: number; Cin: number; Cout: number; opts: Conv1dOptions; bias: boolean; allocate?: boolean }

function outputLength({ L, opts }: ConvShape): number {
  const { kernel, stride = 1, padding = 0, dilation = 1 } = opts;
  return Math.floor((L + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1;
}

function conv1dCase(label: string, variant: WeightVariant, spec: ConvShape): KernelCase {
  const name = `conv1d/${variantName(variant)} ${label}`;
  return defineCase(name, 'conv1d', weightBound(variant.format, BOUND), async (backend, oracle) => {
    const random = seededRandom(seedOf(name));
    const { L, Cin, Cout, opts } = spec;
    const cols = Cin * opts.kernel;
    const x = uniform(random, L * Cin);
    const host = hostMatrix(uniform(random, Cout * cols, 0.5), Cout, cols, variant);
    const bias = spec.bias ? uniform(random, Cout) : null;
    const run = (be: Backend, xv: Float32Array, w: HostMatrix, b: Float32Array | null, out?: Tensor) =>
      be.conv1d(be.tensor(xv, [L, Cin]), be.weight(w), b && be.tensor(b, [Cout]), opts, out);
    const Lout = outputLength(spec);
    const actual = await backend.read(spec.allocate ? run(backend, x, host, bias) : run(backend, x, host, bias, poisoned(backend, [Lout, Cout])));
    const expected = await oracle.read(run(oracle, x, host, bias));
    const absWeight: HostMatrix = { format: 'f32', rows: Cout, cols, data: absolute(matrixValues(host)) };
    const magnitude = await oracle.read(run(oracle, absolute(x), absWeight, bias && absolute(bias)));
    return compare(actual, expected, magnitude as Float32Array);
  });
}

const f32 = { format: 'f32' } as const;

export const conv1dCases: KernelCase[] = [
  conv1dCase('L=33 3→17, kernel 3, zero pad 1', f32, { L: 33, Cin: 3, Cout: 17, opts: { kernel: 3, padding: 1 }, bias: true }),
  conv1dCase('L=17 5→4, kernel 7, reflect pad 3', f32, { L: 17, Cin: 5, Cout: 4, opts: { kernel: 7, padding: 3, padMode: 'reflect' }, bias: true }),
  conv1dCase('L=101 128→64, kernel 3, stride 2, pad 1 (audio encoder conv2)', f32, { L: 101, Cin: 128, Cout: 64, opts: { kernel: 3, stride: 2, padding: 1 }, bias: true }),
  conv1dCase('L=20 4→6, kernel 3, dilation 3, reflect pad 3', f32, { L: 20, Cin: 4, Cout: 6, opts: { kernel: 3, dilation: 3, padding: 3, padMode: 'reflect' }, bias: false }),
  conv1dCase('L=1 33→3, kernel 1', f32, { L: 1, Cin: 33, Cout: 3, opts: { kernel: 1 }, bias: true }),
  // BigVGAN's last conv and polyphase upsamplers: Cout 1-2 over many frames.
  conv1dCase('L=301 16→1, kernel 7, zero pad 3', f32, { L: 301, Cin: 16, Cout: 1, opts: { kernel: 7, padding: 3 }, bias: true }),
  conv1dCase('L=130 24→2, kernel 5, reflect pad 2', { format: 'q8', scales: 'f32' }, { L: 130, Cin: 24, Cout: 2, opts: { kernel: 5, padding: 2, padMode: 'reflect' }, bias: false }),
  conv1dCase('L=4 40→9, kernel 3, zero pad 1', f32, { L: 4, Cin: 40, Cout: 9, opts: { kernel: 3, padding: 1 }, bias: true }),
  conv1dCase('L=1 2→3, kernel 3, zero pad 1', f32, { L: 1, Cin: 2, Cout: 3, opts: { kernel: 3, padding: 1 }, bias: false }),
  conv1dCase('L=29 3→5, kernel 4, stride 3, dilation 2, allocated out', f32, { L: 29, Cin: 3, Cout: 5, opts: { kernel: 4, stride: 3, dilation: 2 }, bias: false, allocate: true }),
  conv1dCase('L=33 8→16, kernel 5, reflect pad 2', { format: 'f16' }, { L: 33, Cin: 8, Cout: 16, opts: { kernel: 5, padding: 2, padMode: 'reflect' }, bias: true }),
  conv1dCase('L=17 33→7, kernel 3, pad 1', { format: 'q8', scales: 'f16' }, { L: 17, Cin: 33, Cout: 7, opts: { kernel: 3, padding: 1 }, bias: true }),
  conv1dCase('L=17 33→7, kernel 3, reflect pad 1', { format: 'q4', scales: 'f32' }, { L: 17, Cin: 33, Cout: 7, opts: { kernel: 3, padding: 1, padMode: 'reflect' }, bias: true }),
];
