/**
 * @omniweb/media — model inputs from files and live media (fact sheet §3.1, §4.1, §4.2).
 *
 * Audio
 * - `decodeWav(bytes, { maxSeconds })` → `{ samples (mono), sampleRate, channels, encoding }` (pure TS);
 *   `encodeWav(samples, sampleRate)` → 16-bit PCM mono WAV bytes.
 * - `resample(samples, fromRate, toRate = 16000)`; `new Resampler(fromRate, toRate)` with
 *   `push(chunk)` / `flush()` for live PCM (bit-identical to the one-shot result).
 * - `logMel(samples, { config, pad, truncate })` → `{ features [frames, melBins], validFrames, clampMax }`.
 * - `new MelStream({ blockFrames, initialMax })`: `push(chunk)` / `finish()` → `MelBlock[]` of
 *   `blockFrames` (2·n_window = 200) frames; see the class for what streaming reproduces of the
 *   clip-wide clamp, and `reclampMel` to complete it.
 *
 * Images
 * - `decodeImage(bytes | Blob)` → `RgbImage` (browser decoder, or pngjs / jpeg-js in Node).
 * - `processImage(image, config)` → `{ pixelValues [patches, 1176], gridThw, height, width }`;
 *   its steps `smartResize`, `resizeBicubic` (PIL-exact), `normalizeImage`, `patchify`.
 *
 * Video
 * - `videoFromSource(source, config)`: 2 fps sampling of a `FrameSource` (`framesSource(frames, fps)`,
 *   `parseY4m(bytes)`) → `{ pixelValues, gridThw, secondPerGrid, frameIndices, sampleFps }`.
 * - `processVideo(frames, config)` for frames already sampled.
 * - Live: `FrameRateSampler`, `VideoPatchStream` (one temporal patch per 2 frames),
 *   `liveVideoPatches(timedFrames)`, and in a browser `cameraFrames(track)`.
 *
 * Live turns
 * - `SpeechDetector` (16 kHz PCM → speech `start` / `end` with audio times) and its default
 *   `EnergyVad` (energy over an adaptive noise floor, zero-crossing rate, hangover, minimum length).
 * - In a browser `microphonePcm(stream)`: a MediaStream's audio as 16 kHz mono chunks (AudioWorklet).
 *
 * Settings: `parsePreprocessorConfig(json)` or the `DEFAULT_*` objects; every entry point
 * throws `OmniError` (BAD_INPUT, NUMERIC, TRUNCATED, UNSUPPORTED_DTYPE, BAD_CONFIG, ABORTED).
 */
export {
  DEFAULT_AUDIO_FEATURES, DEFAULT_IMAGE_PREPROCESS, DEFAULT_VIDEO_PREPROCESS,
  audioFeatureConfig, imagePreprocessConfig, parsePreprocessorConfig, videoPreprocessConfig,
  type AudioFeatureConfig, type PreprocessorConfig, type VideoPreprocessConfig, type VisionPreprocessConfig,
} from './preprocessor.js';
export { decodeWav, encodeWav, type DecodedAudio, type WavEncoding, type WavOptions } from './wav.js';
export { Resampler, resample } from './resample.js';
export { ComplexFft, RealFft } from './fft.js';
export { MelStream, logMel, reclampMel, type LogMel, type LogMelOptions, type MelBlock, type MelStreamOptions } from './mel.js';
export {
  MAX_IMAGE_SIDE, normalizeImage, patchify, processImage, resizeBicubic, smartResize,
  type ProcessedImage, type RgbImage, type SmartResizeOptions, type VisionPatches,
} from './image.js';
export {
  canvasPixels, decodeImage, decodeImageBrowser, decodeImageNode, readImageHeader, rgbaToRgb,
  type ImageDecodeOptions, type ImageFormat,
} from './decode.js';
export {
  FrameRateSampler, VideoPatchStream, framesSource, liveVideoPatches, processVideo, sampleFrameIndices, videoFrameSize, videoFromSource,
  type FrameSource, type ProcessedVideo, type SampledVideo, type TimedFrame, type VideoPatchStreamOptions, type VideoTemporalPatch,
} from './video.js';
export { parseY4m, type Y4mVideo } from './y4m.js';
export { cameraFrames, type CameraFramesOptions } from './camera.js';
export { EnergyVad, type EnergyVadOptions, type SpeechDetector, type SpeechEvent } from './vad.js';
export { microphonePcm, type MicrophoneOptions } from './microphone.js';
