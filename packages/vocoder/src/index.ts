export {
  Token2Wav, SAMPLE_RATE, synthesisSeed,
  type Voice, type SynthesisOptions, type CodeSource, type Token2WavLoadOptions,
} from './token2wav.js';
export {
  Dit, DitRun, DitCondition, DIT_SOLVERS, solverEvaluations, resolveSampleOptions,
  type DitConfig, type DitSolver, type DitWeights, type DitProbe, type DitLoadOptions, type SampleOptions,
} from './dit.js';
export { SpeakerEncoder, type EcapaWeights } from './ecapa.js';
export { BigVgan, type BigVganConfig, type BigVganWeights, type BigVganProbe, type BigVganLoadOptions } from './bigvgan.js';
export type { WeightSource } from './weights.js';
