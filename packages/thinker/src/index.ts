export {
  Thinker, RunState, loadThinkerWeights, loadDecoderLayers, decoderLayers,
  type ThinkerConfig, type ThinkerWeights, type DecoderLayerWeights, type ThinkerChunk, type ThinkerLoadOptions,
  type WeightSource, type ForwardOptions, type LogitRows,
} from './thinker.js';
export { KVCache, createEvictionPolicy, type CachePolicy, type CacheStorage, type EvictionPolicy, type Eviction, type KVCacheShape } from './kvCache.js';
export { mergeMedia, MEDIA_KINDS, type MediaKind, type MediaRows, type MediaEmbeddings, type MediaTokenIds } from './merge.js';
export { Sampler, TokenHistory, seededRandom, type SamplingOptions } from './sampling.js';
export {
  ThinkerSession,
  type SessionOptions, type SessionMark, type PromptChunk, type PrefillOptions, type PrefillResult, type TokenEvent, type GenerateOptions,
} from './session.js';
