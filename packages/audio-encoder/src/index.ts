export {
  AudioEncoder, AudioBlockEncoder, audioTokenCount, audioPositionTable, loadAudioEncoderWeights,
  type AudioEncoderConfig, type AudioEncoderWeights, type AudioLayerWeights, type AudioEncodeOptions, type AudioTap,
  type LogMel, type WeightSource,
} from './audioEncoder.js';
