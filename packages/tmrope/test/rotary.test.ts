import { beforeAll, describe, expect, it } from 'vitest';
import { isOmniError, type OmniConfig, type RopeSpec } from '@omniweb/core';
import { mropeSpec, ropeCosSin, visionRopeSpec } from '../src/index.js';
import { array, goldenCase, goldenMedia, ints, tinyConfig } from './golden.js';

let omni: OmniConfig;
beforeAll(async () => {
  omni = await tinyConfig();
});

/** Largest |a − b| over all elements. */
function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// float32 cos/sin of the same float32 angle: the reference's vectorised cos may differ from a
// correctly rounded one by an ulp (6e-8 near 1); an inverse frequency one ulp off already moves
// the table by 3e-7 at these positions.
const F32_TRIG = 1.2e-7;

describe('mropeSpec + ropeCosSin equal the golden rotary tables', () => {
  for (const name of ['thinker_p1', 'thinker_p2']) {
    it(`${name}: rope_cos / rope_sin after the M-RoPE section choice`, async () => {
      const c = await goldenCase(name);
      const { headDim, ropeTheta, mropeSection, heads, hidden } = omni.thinker.text;
      expect(headDim).toBe(hidden / heads);
      const spec = mropeSpec(headDim, ropeTheta, mropeSection);
      const positions = Int32Array.from(ints(c, 'position_ids'));
      const L = positions.length / 3;
      const { cos, sin } = ropeCosSin(spec, positions, L);
      // golden [3, 1, L, headDim] holds every stream's table; the model takes dimension chunks of
      // the section list doubled over the head, chunk i from stream i mod 3 (fact sheet §5.1).
      const chunks = [...mropeSection, ...mropeSection];
      const streamOfDim = chunks.flatMap((n, i) => Array<number>(n).fill(i % 3));
      expect(streamOfDim.length).toBe(headDim);
      for (const [table, ours] of [['rope_cos', cos], ['rope_sin', sin]] as const) {
        const g = array(c, table).data;
        const expected = new Float32Array(L * headDim);
        for (let t = 0; t < L; t++) for (let d = 0; d < headDim; d++) expected[t * headDim + d] = g[(streamOfDim[d] * L + t) * headDim + d];
        expect(maxAbsDiff(ours, expected), table).toBeLessThanOrEqual(F32_TRIG);
      }
    });
  }

  it('the spec has the reference\'s float32 inverse frequencies and stream per frequency', async () => {
    const c = await goldenCase('thinker_p1');
    const { headDim, ropeTheta, mropeSection } = omni.thinker.text;
    const spec = mropeSpec(headDim, ropeTheta, mropeSection);
    expect(spec.style).toBe('half');
    expect(spec.invFreq.length).toBe(headDim / 2);
    // Token 0 is at position 0 in all streams and 1 only where the stream reaches 1, so the
    // golden angle acos(cos) at a text token of position p is p · inv_freq: read it at p = 1.
    const g = array(c, 'rope_cos').data;
    const L = ints(c, 'input_ids').length;
    for (let j = 0; j < headDim / 2; j++) expect(Math.abs(Math.cos(spec.invFreq[j]) - g[(spec.stream[j] * L + 1) * headDim + j])).toBeLessThanOrEqual(F32_TRIG);
    expect(Array.from(spec.stream)).toEqual(mropeSection.flatMap((n, s) => Array<number>(n).fill(s)));
  });
});

describe('visionRopeSpec equals the golden ViT rotary', () => {
  it('image: angles of every patch (rotary_pos_emb) through ropeCosSin', async () => {
    const { imageGrid, rotaryPosEmb } = await goldenMedia();
    const v = omni.thinker.vision;
    const spec = visionRopeSpec(v.headDim, 10000);
    const [t, h, w] = imageGrid;
    const m = v.spatialMergeSize;
    // Patch (row, column) in the patch order of pixel_values: merge groups in raster order, then
    // the m × m patches of a group in raster order (fact sheet §4.1).
    const rows: number[] = [];
    const cols: number[] = [];
    for (let f = 0; f < t; f++) for (let br = 0; br < h / m; br++) for (let bc = 0; bc < w / m; bc++) {
      for (let r = 0; r < m; r++) for (let q = 0; q < m; q++) { rows.push(br * m + r); cols.push(bc * m + q); }
    }
    const P = rows.length;
    const { cos, sin } = ropeCosSin(spec, Int32Array.from([...rows, ...cols]), P);
    const F = v.headDim / 2;
    expect(rotaryPosEmb.shape).toEqual([P, F]);
    const g = rotaryPosEmb.data;
    const expectedCos = new Float32Array(P * v.headDim);
    const expectedSin = new Float32Array(P * v.headDim);
    // cos = cos(cat(freqs, freqs)) over the head.
    for (let p = 0; p < P; p++) for (let d = 0; d < v.headDim; d++) {
      expectedCos[p * v.headDim + d] = Math.cos(g[p * F + (d % F)]);
      expectedSin[p * v.headDim + d] = Math.sin(g[p * F + (d % F)]);
    }
    expect(maxAbsDiff(cos, expectedCos)).toBeLessThanOrEqual(F32_TRIG);
    expect(maxAbsDiff(sin, expectedSin)).toBeLessThanOrEqual(F32_TRIG);
  });
});

describe('ropeCosSin layouts', () => {
  it("'interleaved' puts frequency j at 2j and 2j + 1; 'half' at j and j + F", () => {
    const spec: RopeSpec = { invFreq: Float32Array.of(1, 0.25), stream: Int32Array.of(0, 1), style: 'interleaved' };
    const positions = Int32Array.of(3, 5, 7, 11);
    const { cos } = ropeCosSin(spec, positions, 2);
    const half = ropeCosSin({ ...spec, style: 'half' }, positions, 2).cos;
    for (let t = 0; t < 2; t++) {
      for (let j = 0; j < 2; j++) {
        const angle = Math.fround(positions[spec.stream[j] * 2 + t] * spec.invFreq[j]);
        expect(cos[t * 4 + 2 * j]).toBe(Math.fround(Math.cos(angle)));
        expect(cos[t * 4 + 2 * j + 1]).toBe(Math.fround(Math.cos(angle)));
        expect(half[t * 4 + j]).toBe(Math.fround(Math.cos(angle)));
        expect(half[t * 4 + j + 2]).toBe(Math.fround(Math.cos(angle)));
      }
    }
  });
});

function expectBadInput(f: () => unknown, pattern: RegExp): void {
  let error: unknown;
  try {
    f();
  } catch (e) {
    error = e;
  }
  expect(isOmniError(error, 'BAD_INPUT'), `expected OmniError BAD_INPUT, got ${String(error)}`).toBe(true);
  expect((error as Error).message).toMatch(pattern);
}

describe('bad input is refused with OmniError', () => {
  it('spec builders', () => {
    expectBadInput(() => mropeSpec(15, 1e6, [2, 3, 3]), /even integer/);
    expectBadInput(() => mropeSpec(16, 1, [2, 3, 3]), /theta is 1/);
    expectBadInput(() => mropeSpec(16, 1e6, [2, 3, 4]), /sums to 9/);
    expectBadInput(() => mropeSpec(16, 1e6, [2, 6] as never), /three frequency counts/);
    expectBadInput(() => mropeSpec(16, 1e6, [2, -1, 7]), /three frequency counts/);
    expectBadInput(() => visionRopeSpec(18, 1e4), /multiple of 4/);
    expectBadInput(() => visionRopeSpec(16, Number.NaN), /theta is NaN/);
  });

  it('ropeCosSin', () => {
    const spec = mropeSpec(16, 1e6, [2, 3, 3]);
    expectBadInput(() => ropeCosSin(null as never, new Int32Array(3), 1), /must be a RopeSpec/);
    expectBadInput(() => ropeCosSin({ ...spec, style: 'x' as never }, new Int32Array(3), 1), /style is x/);
    expectBadInput(() => ropeCosSin({ ...spec, stream: new Int32Array(2) }, new Int32Array(3), 1), /8 frequencies and 2 stream entries/);
    expectBadInput(() => ropeCosSin(spec, [0, 0, 0] as never, 1), /must be an Int32Array/);
    expectBadInput(() => ropeCosSin(spec, new Int32Array(7), 2), /do not split/);
    expectBadInput(() => ropeCosSin(spec, new Int32Array(4), 2), /reads stream 2, but positions hold 2 streams/);
  });
});
