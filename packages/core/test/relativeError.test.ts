import { describe, expect, it } from 'vitest';
import { isOmniError, relativeError } from '../src/index.js';

describe('relativeError', () => {
  it('is ‖got − want‖ / ‖want‖', () => {
    expect(relativeError([3, 4], [3, 4])).toBe(0);
    expect(relativeError(Float32Array.of(0, 0), Float32Array.of(3, 4))).toBe(1);
    expect(relativeError([3, 5], [3, 4])).toBeCloseTo(1 / 5, 15);
  });

  it('refuses arrays of different lengths (SHAPE_MISMATCH)', () => {
    let caught: unknown;
    try {
      relativeError([1, 2, 3], [1, 2]);
    } catch (e) {
      caught = e;
    }
    expect(isOmniError(caught, 'SHAPE_MISMATCH')).toBe(true);
  });
});
