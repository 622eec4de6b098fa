/** Every kernel case, in one list that the Node and browser suites both run. */
import { attentionCases } from './attention.js';
import { conv1dCases } from './conv1d.js';
import { elementwiseCases } from './elementwise.js';
import { embeddingCases } from './embedding.js';
import type { KernelCase } from './harness.js';
import { kv8Cases } from './kv8.js';
import { layoutCases } from './layout.js';
import { linearCases } from './linear.js';
import { matmulCases } from './matmul.js';
import { normCases } from './norms.js';
import { rotaryCases } from './rotary.js';
import { snakeBetaCases } from './snakeBeta.js';
import { argmaxCases, softmaxCases } from './softmax.js';
import { unaryCases } from './unary.js';
import { validationCases } from './validation.js';

export type { CaseResult, KernelCase } from './harness.js';
/** The 8-bit KV cache's cases, for the backends that have one (Backend.kv8): wasm. */
export { kv8Cases };

export const kernelCases: readonly KernelCase[] = [
  ...linearCases,
  ...matmulCases,
  ...normCases,
  ...softmaxCases,
  ...argmaxCases,
  ...elementwiseCases,
  ...embeddingCases,
  ...rotaryCases,
  ...attentionCases,
  ...conv1dCases,
  ...layoutCases,
  ...unaryCases,
  ...snakeBetaCases,
  ...validationCases,
];
