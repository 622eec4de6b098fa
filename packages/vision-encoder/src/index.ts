export {
  VisionEncoder, loadVisionEncoderWeights, visionPatchPositions, windowLayout,
  type GridTHW, type VisualInput, type VisualEmbeddings, type VisionEncodeOptions,
  type VisionTap, type VisionBlockWeights, type VisionEncoderConfig, type VisionEncoderWeights, type WeightSource, type WindowLayout,
} from './visionEncoder.js';
