import { createOracleBackend } from '@omniweb/kernels';
import { goldenSuite } from './goldenSuite.js';

goldenSuite('oracle', createOracleBackend, { interleaved: true });
// The prefill in passes through the same cache equals one pass.
goldenSuite('oracle', createOracleBackend, { maxChunkRows: 50 });
