export {
  Token2Wav, SAMPLE_RATE,
  type Voice, type SynthesisOptions, type CodeSource, type Token2WavLoadOptions,
} from './token2wav.js';
export {
  Dit, DitRun, DitCondition, loadDitWeights, timeSinusoid, swayTimes,
  type DitConfig, type DitWeights, type DitProbe, type DitLoadOptions, type SampleOptions,
} from './dit.js';
export { SpeakerEncoder, loadEcapaWeights, minReferenceFrames, type EcapaWeights } from './ecapa.js';
export {
  BigVgan, loadBigVganWeights, kaiserSincFilter, polyphaseWeight,
  type BigVganConfig, type BigVganWeights, type BigVganProbe, type BigVganLoadOptions,
} from './bigvgan.js';
export { WeightLoader, type WeightSource } from './weights.js';
