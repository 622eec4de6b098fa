import { createOracleBackend } from '@omniweb/kernels';
import { F32_TOL, goldenSuite } from './goldenSuite.js';

goldenSuite('oracle', createOracleBackend, 'f32', F32_TOL);
// Bounds a little above what these formats measure on the tiny model (random weights, so
// per-weight rounding shows undamped); they catch a broken dequantization, not a precise figure.
goldenSuite('oracle', createOracleBackend, 'f16', 2e-3);
goldenSuite('oracle', createOracleBackend, 'q8', 5e-2);
goldenSuite('oracle', createOracleBackend, 'q4', 0.6);
