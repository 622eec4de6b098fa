import { describe, expect, it } from 'vitest';
import { DEFAULT_AUDIO_FEATURES, DEFAULT_IMAGE_PREPROCESS, DEFAULT_VIDEO_PREPROCESS, parsePreprocessorConfig } from '../src/preprocessor.js';

const code = (c: string) => expect.objectContaining({ code: c });

/** The fields of the Omni preprocessor_config.json as the fact sheet lists them (§3.1, §4.1). */
const omniPreprocessor = {
  feature_extractor_type: 'WhisperFeatureExtractor', feature_size: 128, sampling_rate: 16000, hop_length: 160, n_fft: 400,
  chunk_length: 300, n_samples: 4800000, nb_max_frames: 30000, padding_value: 0.0, dither: 0.0, return_attention_mask: true,
  image_processor_type: 'Qwen2VLImageProcessor', min_pixels: 3136, max_pixels: 12845056, patch_size: 14, temporal_patch_size: 2,
  merge_size: 2, image_mean: [0.48145466, 0.4578275, 0.40821073], image_std: [0.26862954, 0.26130258, 0.27577711],
};

describe('parsePreprocessorConfig', () => {
  it('reads the Omni file into the same values as the defaults', () => {
    const config = parsePreprocessorConfig(omniPreprocessor);
    expect(config.audio).toEqual(DEFAULT_AUDIO_FEATURES);
    expect(config.image).toEqual(DEFAULT_IMAGE_PREPROCESS);
    expect(config.video).toEqual(DEFAULT_VIDEO_PREPROCESS);
    expect(config.video).toMatchObject({ minPixels: 100352, maxPixels: 602112, fps: 2, totalPixels: 90316800 });
  });

  it('takes each field from the file and the rest from the defaults', () => {
    const config = parsePreprocessorConfig({ feature_size: 80, n_samples: 480000, max_pixels: 1003520, patch_size: 16 });
    expect(config.audio).toEqual({ ...DEFAULT_AUDIO_FEATURES, melBins: 80, nSamples: 480000 });
    expect(config.image).toEqual({ ...DEFAULT_IMAGE_PREPROCESS, maxPixels: 1003520, patchSize: 16 });
    expect(config.video.patchSize).toBe(16);
    expect(config.video.maxPixels).toBe(DEFAULT_VIDEO_PREPROCESS.maxPixels);
  });

  it('refuses what it cannot use with BAD_CONFIG', () => {
    expect(() => parsePreprocessorConfig(null)).toThrow(code('BAD_CONFIG'));
    expect(() => parsePreprocessorConfig([1, 2])).toThrow(code('BAD_CONFIG'));
    expect(() => parsePreprocessorConfig({ n_fft: 401 })).toThrow(code('BAD_CONFIG'));
    expect(() => parsePreprocessorConfig({ n_samples: 4800001 })).toThrow(code('BAD_CONFIG'));
    expect(() => parsePreprocessorConfig({ min_pixels: 5000, max_pixels: 4000 })).toThrow(code('BAD_CONFIG'));
    expect(() => parsePreprocessorConfig({ image_std: [0.2, 0.2] })).toThrow(code('BAD_CONFIG'));
    expect(() => parsePreprocessorConfig({ sampling_rate: '16000' })).toThrow(code('BAD_CONFIG'));
  });
});
