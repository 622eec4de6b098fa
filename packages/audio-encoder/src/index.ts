export {
  AudioEncoder, AudioBlockEncoder, audioPositionTable, loadAudioEncoderWeights,
  type AudioEncoderConfig, type AudioEncoderWeights, type AudioLayerWeights, type AudioEncodeOptions, type AudioTap,
  type MelInput, type WeightSource,
} from './audioEncoder.js';
