import { createOracleBackend } from '@omniweb/kernels';
import { F32_TOL, goldenSuite } from './goldenSuite.js';

goldenSuite('oracle', createOracleBackend, 'f32', F32_TOL);
// Bounds a little above what these formats measure on the tiny model (random weights, every
// rounding undamped; largest: f16 7.4e-4, q8 1.9e-2, q4 0.31); they catch a broken
// dequantization, not a precise figure. The reference runs token2wav in f32 (fact sheet §8.3).
goldenSuite('oracle', createOracleBackend, 'f16', 2e-3);
goldenSuite('oracle', createOracleBackend, 'q8', 5e-2);
goldenSuite('oracle', createOracleBackend, 'q4', 0.6);
