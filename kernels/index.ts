export { createOracleBackend } from './oracle/index.js';
export { erf, erfc } from './oracle/erf.js';
export { kernelCases, kv8Cases, type CaseResult, type KernelCase } from './cases/index.js';
