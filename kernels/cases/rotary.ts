/** rotary: half and interleaved pairs, several position streams (M-RoPE), partial rotaryDim and heads, in place. */
import type { Backend, RopeSpec, Tensor } from '@omniweb/core';
import { compare, defineCase, integers, poisoned, seedOf, seededRandom, uniform, type KernelCase } from './harness.js';

/**
 * Angles up to ~64 rad: the angle is the same f32 product on both sides, so only
 * f32 cos/sin and two products remain, ≲ 1e-6 of the head's largest value.
 */
const BOUND = 1e-5;
/**
 * Positions up to 8191: cos/sin of angles of thousands of radians need a range
 * reduction; one done in f32 with a single 2π constant is off by ~2e-4 rad at 8191.
 * That moves q·k by as little, so it is tolerated; a wrong frequency or stream is not.
 */
const LONG_POSITION_BOUND = 5e-4;

/** Frequencies θ^(−2j/rotaryDim), split into consecutive sections, one per position stream. */
function ropeSpec(rotaryDim: number, theta: number, sections: number[], style: RopeSpec['style'], heads?: number): RopeSpec {
  const half = rotaryDim / 2;
  const invFreq = new Float32Array(half);
  for (let j = 0; j < half; j++) invFreq[j] = theta ** (-(2 * j) / rotaryDim);
  const stream = new Int32Array(half);
  let j = 0;
  sections.forEach((length, s) => stream.fill(s, j, (j += length)));
  return { invFreq, stream, style, heads };
}

interface RotaryShape {
  T: number; H: number; D: number; rope: RopeSpec; streams: number; maxPosition: number;
  write: 'poisoned out' | 'in place' | 'allocated out';
}

function rotaryCase(label: string, spec: RotaryShape, bound = BOUND): KernelCase {
  const name = `rotary/${label}, ${spec.write}`;
  return defineCase(name, 'rotary', bound, async (backend, oracle) => {
    const random = seededRandom(seedOf(name));
    const { T, H, D, streams } = spec;
    const x = uniform(random, T * H * D);
    const positions = integers(random, streams * T, spec.maxPosition + 1);
    positions[positions.length - 1] = spec.maxPosition;
    const run = (be: Backend, write: RotaryShape['write']) => {
      const xt = be.tensor(x, [T, H, D]);
      const pt = be.tensor(positions, [streams, T]);
      const out: Tensor | undefined = write === 'in place' ? xt : write === 'poisoned out' ? poisoned(be, [T, H, D]) : undefined;
      return be.rotary(xt, pt, spec.rope, out);
    };
    const actual = await backend.read(run(backend, spec.write));
    const expected = await oracle.read(run(oracle, 'allocated out'));
    // Errors judged against the largest value of their head.
    const floor = new Float32Array(x.length);
    for (let head = 0; head < T * H; head++) {
      const values = x.subarray(head * D, (head + 1) * D);
      floor.fill(values.reduce((m, v) => Math.max(m, Math.abs(v)), 0), head * D, (head + 1) * D);
    }
    return compare(actual, expected, floor);
  });
}

export const rotaryCases: KernelCase[] = [
  rotaryCase('half, Qwen2 θ 1e6, 17×3×128', { T: 17, H: 3, D: 128, rope: ropeSpec(128, 1e6, [64], 'half'), streams: 1, maxPosition: 63, write: 'poisoned out' }),
  rotaryCase('half, M-RoPE sections 16/24/24, 33×5×128', { T: 33, H: 5, D: 128, rope: ropeSpec(128, 1e6, [16, 24, 24], 'half'), streams: 3, maxPosition: 63, write: 'in place' }),
  rotaryCase('half, rotaryDim 40 of 80, 2 streams, 9×3×80', { T: 9, H: 3, D: 80, rope: ropeSpec(40, 1e4, [10, 10], 'half'), streams: 2, maxPosition: 40, write: 'poisoned out' }),
  rotaryCase('half, first 3 of 5 heads, 7×5×64', { T: 7, H: 5, D: 64, rope: ropeSpec(64, 1e6, [32], 'half', 3), streams: 1, maxPosition: 50, write: 'in place' }),
  rotaryCase('interleaved, DiT, 33×1×64', { T: 33, H: 1, D: 64, rope: ropeSpec(64, 1e4, [32], 'interleaved'), streams: 1, maxPosition: 32, write: 'allocated out' }),
  rotaryCase('interleaved, rotaryDim 6 of 17, 3×2×17', { T: 3, H: 2, D: 17, rope: ropeSpec(6, 1e4, [3], 'interleaved'), streams: 1, maxPosition: 5, write: 'poisoned out' }),
  rotaryCase('half, decode T=1 at position 8191, 1×16×128', { T: 1, H: 16, D: 128, rope: ropeSpec(128, 1e6, [64], 'half'), streams: 1, maxPosition: 8191, write: 'in place' }, LONG_POSITION_BOUND),
  rotaryCase('half, M-RoPE positions to 8191, 17×2×128', { T: 17, H: 2, D: 128, rope: ropeSpec(128, 1e6, [16, 24, 24], 'half'), streams: 3, maxPosition: 8191, write: 'poisoned out' }, LONG_POSITION_BOUND),
];
