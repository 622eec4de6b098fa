export { createOracleBackend } from './oracle/index.js';
export { erf, erfc } from './oracle/erf.js';
