import { createOracleBackend } from '@omniweb/kernels';
import { F32_TOL, goldenSuite } from './goldenSuite.js';

goldenSuite('oracle', createOracleBackend, 'f32', F32_TOL);
