/** snakeBeta: BigVGAN's anti-aliased SnakeBeta (×2 up, SnakeBeta, ×2 down) over time-major x [L, C]. */
import type { Backend, Tensor } from '@omniweb/core';
import { compare, defineCase, poisoned, seedOf, seededRandom, uniform, type KernelCase } from './harness.js';

/**
 * Errors are judged per element against the size of what is summed:
 * Σ|down| · (U·(1 + e^α/β') + 1/β') with U = 2·Σ|up|·max|x| of the channel and β' = e^β + 1e-9.
 * The f32 sums and the argument u·e^α (rounded, as torch does) stay near 1e-7 of that; the
 * sine needs a real range reduction (WGSL only promises 2^-11 absolute on [−π, π]).
 */
const BOUND = 1e-5;

interface SnakeShape { L: number; C: number; up: number; down: number; allocate?: boolean }

function snakeCase(spec: SnakeShape): KernelCase {
  const { L, C, up, down } = spec;
  const name = `snakeBeta/L=${L} C=${C}, ${up}-tap up, ${down}-tap down${spec.allocate ? ', allocated out' : ''}`;
  return defineCase(name, 'snakeBeta', BOUND, async (backend, oracle) => {
    const random = seededRandom(seedOf(name));
    const x = uniform(random, L * C, 3);
    const alphaLog = uniform(random, C);
    const betaLog = uniform(random, C);
    const upTaps = uniform(random, up, 0.5, 0.1);
    const downTaps = uniform(random, down, 0.5, 0.1);
    const run = (be: Backend, out?: Tensor) => be.snakeBeta(
      be.tensor(x, [L, C]), be.tensor(alphaLog, [C]), be.tensor(betaLog, [C]),
      { up: be.tensor(upTaps, [up]), down: be.tensor(downTaps, [down]) }, out,
    );
    const actual = await backend.read(spec.allocate ? run(backend) : run(backend, poisoned(backend, [L, C])));
    const sumAbs = (taps: Float32Array) => taps.reduce((s, v) => s + Math.abs(v), 0);
    const floor = new Float64Array(L * C);
    for (let c = 0; c < C; c++) {
      let peak = 0;
      for (let t = 0; t < L; t++) peak = Math.max(peak, Math.abs(x[t * C + c]));
      const U = 2 * sumAbs(upTaps) * peak;
      const inverseBeta = 1 / (Math.exp(betaLog[c]) + 1e-9);
      const scale = sumAbs(downTaps) * (U * (1 + Math.exp(alphaLog[c]) * inverseBeta) + inverseBeta);
      for (let t = 0; t < L; t++) floor[t * C + c] = scale;
    }
    return compare(actual, await oracle.read(run(oracle)), floor);
  });
}

export const snakeBetaCases: KernelCase[] = [
  snakeCase({ L: 1, C: 1, up: 12, down: 12 }),
  snakeCase({ L: 5, C: 3, up: 12, down: 12 }),
  snakeCase({ L: 64, C: 33, up: 12, down: 12 }),
  snakeCase({ L: 300, C: 24, up: 12, down: 12, allocate: true }),
  snakeCase({ L: 9, C: 7, up: 4, down: 2 }),
  snakeCase({ L: 17, C: 5, up: 8, down: 6 }),
];
