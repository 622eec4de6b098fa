// The vision encoder against the golden image and video cases (HF float32 run of the tiny
// checkpoint), on every backend; the window tables; bad inputs fail with OmniError.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, Checkpoint, OmniConfig, VisionEncoderConfig, WeightFormat } from '@omniweb/core';
import { processImage, processVideo, type RgbImage } from '@omniweb/media';
import { VisionEncoder, visionPatchPositions, windowLayout, type GridTHW, type VisualInput } from '../src/index.js';
import {
  BACKENDS, expectGolden, expectOmniError, goldenCase, openTiny, type GoldenCase,
} from '../../audio-encoder/test/golden.js';

/** The f32 bar of the golden README; other formats are measured against bounds their rounding allows. */
const BOUND: Record<WeightFormat, number> = { f32: 1e-4, f16: 2e-3, q8: 3e-2, q4: 0.3 };

let image: GoldenCase;
let video: GoldenCase;
let tiny: { checkpoint: Checkpoint; config: OmniConfig };
let vision: VisionEncoderConfig;
let imageInput: VisualInput;
let videoInput: VisualInput;

function grid(c: GoldenCase, name: string): GridTHW {
  const [t, h, w] = c(name).data as Int32Array;
  return [t, h, w];
}

beforeAll(async () => {
  [image, video, tiny] = await Promise.all([goldenCase('image'), goldenCase('video'), openTiny()]);
  vision = tiny.config.thinker.vision;
  imageInput = { pixelValues: image('pixel_values').data as Float32Array, gridThw: grid(image, 'image_grid_thw') };
  videoInput = { pixelValues: video('pixel_values_videos').data as Float32Array, gridThw: grid(video, 'video_grid_thw'), frames: 6 };
});

afterAll(async () => {
  await tiny.checkpoint.close();
});

const f32 = (c: GoldenCase, name: string) => c(name).data as Float32Array;

describe.each(BACKENDS)('vision encoder on $name', ({ name, create }) => {
  let backend: Backend;
  let encoder: VisionEncoder;

  beforeAll(async () => {
    backend = await create();
    encoder = await VisionEncoder.load(backend, tiny.checkpoint, vision);
  });

  afterAll(() => {
    encoder?.dispose();
    backend?.destroy();
  });

  const read = async (t: Parameters<Backend['read']>[0]) => (await backend.read(t)) as Float32Array;

  it('matches every golden intermediate of the 140×168 image (windows with padding)', async () => {
    const taps = new Map<string, Float32Array>();
    const out = await encoder.encode([imageInput], { inspect: async (tap, t) => { taps.set(tap, await read(t)); } });
    expect(out.grids).toEqual([grid(image, 'image_grid_thw')]);
    expect(out.tokens).toEqual([30]);
    expectGolden(`${name} f32 image patch_embed_out`, taps.get('patchEmbed')!, f32(image, 'patch_embed_out'), BOUND.f32);
    expectGolden(`${name} f32 image block0_in`, taps.get('blockInput')!, f32(image, 'block0_in'), BOUND.f32);
    for (let l = 0; l < vision.depth; l++) {
      expectGolden(`${name} f32 image block${l}_out`, taps.get(`block.${l}`)!, f32(image, `block${l}_out`), BOUND.f32);
    }
    expect(out.embeddings.shape).toEqual(image('image_embeds').shape);
    expectGolden(`${name} f32 image_embeds`, await read(out.embeddings), f32(image, 'image_embeds'), BOUND.f32);
    backend.dispose(out.embeddings);
  });

  it('matches the golden video (3 temporal patches; full attention stays inside each frame)', async () => {
    const taps = new Map<string, Float32Array>();
    const out = await encoder.encode([videoInput], { inspect: async (tap, t) => { taps.set(tap, await read(t)); } });
    expect(out.grids).toEqual([grid(video, 'video_grid_thw')]);
    expectGolden(`${name} f32 video block0_out`, taps.get('block.0')!, f32(video, 'block0_out'), BOUND.f32);
    expectGolden(`${name} f32 video block1_out`, taps.get('block.1')!, f32(video, 'block1_out'), BOUND.f32);
    expectGolden(`${name} f32 video_embeds`, await read(out.embeddings), f32(video, 'video_embeds'), BOUND.f32);
    backend.dispose(out.embeddings);
  });

  it('encodes several inputs in one call as if each were alone', async () => {
    const out = await encoder.encode([imageInput, videoInput, imageInput]);
    expect(out.tokens).toEqual([30, 18, 30]);
    const rows = await read(out.embeddings);
    const width = vision.outHidden;
    expectGolden(`${name} f32 image_embeds (1st of 3)`, rows.subarray(0, 30 * width), f32(image, 'image_embeds'), BOUND.f32);
    expectGolden(`${name} f32 video_embeds (2nd of 3)`, rows.subarray(30 * width, 48 * width), f32(video, 'video_embeds'), BOUND.f32);
    expectGolden(`${name} f32 image_embeds (3rd of 3)`, rows.subarray(48 * width), f32(image, 'image_embeds'), BOUND.f32);
    backend.dispose(out.embeddings);
  });

  it('encodes a video one temporal patch at a time into the golden video tokens (live video)', async () => {
    const [t, h, w] = grid(video, 'video_grid_thw');
    const frameValues = videoInput.pixelValues.length / t; // one temporal patch: h·w patch vectors
    const width = vision.outHidden;
    const tokens = (h * w) / vision.spatialMergeSize ** 2;
    const want = f32(video, 'video_embeds');
    for (let f = 0; f < t; f++) {
      const out = await encoder.encode([{ pixelValues: videoInput.pixelValues.subarray(f * frameValues, (f + 1) * frameValues), gridThw: [1, h, w] }]);
      expectGolden(`${name} f32 video_embeds (temporal patch ${f} alone)`, await read(out.embeddings), want.subarray(f * tokens * width, (f + 1) * tokens * width), BOUND.f32);
      backend.dispose(out.embeddings);
    }
  });

  it('takes @omniweb/media patches as they are (processImage, processVideo of the golden pixels)', async () => {
    const rgb = (c: GoldenCase, key: string, index = 0): RgbImage => {
      const a = c(key);
      const [height, width] = a.shape.slice(-3, -1);
      const size = height * width * 3;
      return { height, width, data: Uint8Array.from((a.data as Uint8Array).subarray(index * size, (index + 1) * size)) };
    };
    const frames = Array.from({ length: video('frames_rgb').shape[0] }, (_, i) => rgb(video, 'frames_rgb', i));
    // The golden video went through the image limits (README), so the frames keep their size.
    const clip = processVideo(frames, { minPixels: 4 * 28 * 28, maxPixels: 16384 * 28 * 28 });
    const out = await encoder.encode([processImage(rgb(image, 'image_rgb')), clip]);
    expect(out.grids).toEqual([grid(image, 'image_grid_thw'), grid(video, 'video_grid_thw')]);
    const rows = await read(out.embeddings);
    const width = vision.outHidden;
    expectGolden(`${name} f32 image_embeds (media processImage)`, rows.subarray(0, 30 * width), f32(image, 'image_embeds'), BOUND.f32);
    expectGolden(`${name} f32 video_embeds (media processVideo)`, rows.subarray(30 * width), f32(video, 'video_embeds'), BOUND.f32);
    backend.dispose(out.embeddings);
  });

  it.each(['f16', 'q8', 'q4'] as const)('%s weights stay near the golden embeddings', async (format) => {
    const quantized = await VisionEncoder.load(backend, tiny.checkpoint, vision, { format });
    try {
      expect(quantized.weights.patchEmbed.format).toBe(format);
      const out = await quantized.encode([imageInput, videoInput]);
      const rows = await read(out.embeddings);
      const width = vision.outHidden;
      expectGolden(`${name} ${format} image_embeds`, rows.subarray(0, 30 * width), f32(image, 'image_embeds'), BOUND[format]);
      expectGolden(`${name} ${format} video_embeds`, rows.subarray(30 * width), f32(video, 'video_embeds'), BOUND[format]);
      backend.dispose(out.embeddings);
    } finally {
      quantized.dispose();
    }
  });
});

describe('window tables and rotary positions', () => {
  it('give the golden window_index and cu_window_seqlens', () => {
    const layout = windowLayout([grid(image, 'image_grid_thw')], vision);
    expect(Array.from(layout.windowIndex)).toEqual(Array.from(image('window_index').data));
    // The reference removes repeated bounds (empty windows) with unique_consecutive.
    const raw = Array.from(image('cu_window_seqlens').data);
    expect(Array.from(layout.windowBounds)).toEqual(raw.filter((v, i) => i === 0 || v !== raw[i - 1]));
    expect(Array.from(layout.frameBounds)).toEqual([0, 120]);
  });

  it('give the golden rotary angles (row, column) per patch', async () => {
    const g = grid(image, 'image_grid_thw');
    const backend = await BACKENDS[0].create();
    const rope = (await VisionEncoder.load(backend, tiny.checkpoint, vision)).rope;
    backend.destroy();
    const positions = visionPatchPositions(g, vision.spatialMergeSize);
    const patches = g[0] * g[1] * g[2];
    const half = rope.invFreq.length;
    const angles = new Float32Array(patches * half);
    for (let p = 0; p < patches; p++) {
      for (let j = 0; j < half; j++) angles[p * half + j] = positions[rope.stream[j] * patches + p] * rope.invFreq[j];
    }
    expectGolden('host f32 image rotary_pos_emb', angles, f32(image, 'rotary_pos_emb'), 1e-6);
  });

  it.each([[[2, 16, 8]], [[1, 8, 8]], [[3, 4, 6], [1, 18, 26]]] as GridTHW[][])('keep windows inside one frame and one tile for %j', (...grids) => {
    const layout = windowLayout(grids, vision);
    const unit = vision.spatialMergeSize ** 2;
    const edge = vision.windowSize / vision.spatialMergeSize / vision.patchSize;
    const tokens = grids.reduce((n, [t, h, w]) => n + (t * h * w) / unit, 0);
    // A permutation of the merged tokens, and its inverse.
    expect([...layout.windowIndex].sort((a, b) => a - b)).toEqual(Array.from({ length: tokens }, (_, i) => i));
    layout.windowIndex.forEach((token, i) => expect(layout.rasterIndex[token]).toBe(i));
    // Where each merged token sits: input, frame, merged row and column.
    const place: { frame: number; y: number; x: number }[] = [];
    let frame = 0;
    for (const [t, h, w] of grids) {
      for (let f = 0; f < t; f++, frame++) for (let y = 0; y < h / 2; y++) for (let x = 0; x < w / 2; x++) place.push({ frame, y, x });
    }
    const bounds = Array.from(layout.windowBounds);
    for (let s = 0; s + 1 < bounds.length; s++) {
      expect(bounds[s + 1]).toBeGreaterThan(bounds[s]);
      const members = Array.from(layout.windowIndex.subarray(bounds[s] / unit, bounds[s + 1] / unit), (i) => place[i]);
      expect(new Set(members.map((p) => `${p.frame} ${Math.floor(p.y / edge)} ${Math.floor(p.x / edge)}`)).size).toBe(1);
    }
    // Frame bounds fall on window bounds, one per frame.
    expect(Array.from(layout.frameBounds).every((v) => bounds.includes(v))).toBe(true);
    expect(layout.frameBounds.length - 1).toBe(frame);
  });
});

describe('vision encoder input checks', () => {
  let backend: Backend;
  let encoder: VisionEncoder;

  beforeAll(async () => {
    backend = await BACKENDS[0].create();
    encoder = await VisionEncoder.load(backend, tiny.checkpoint, vision);
  });

  afterAll(() => {
    encoder.dispose();
    backend.destroy();
  });

  it('rejects a grid that does not match pixel_values', async () => {
    await expectOmniError(() => encoder.encode([{ ...imageInput, gridThw: [1, 10, 10] }]), 'BAD_INPUT', /holds 141120 values; a 1×10×10 grid needs 100 patches × 1176/);
    await expectOmniError(() => encoder.encode([{ ...imageInput, gridThw: [1, 5, 24] }]), 'BAD_INPUT', /gridThw h = 5; it must be a positive multiple of spatial_merge_size 2/);
    await expectOmniError(() => encoder.encode([{ ...videoInput, gridThw: [2, 4, 6], frames: undefined }]), 'BAD_INPUT', /a 2×4×6 grid needs 48 patches/);
    await expectOmniError(() => encoder.encode([{ ...videoInput, gridThw: [0, 4, 6] }]), 'BAD_INPUT', /t = 0/);
    await expectOmniError(() => encoder.encode([{ pixelValues: imageInput.pixelValues } as VisualInput]), 'BAD_INPUT', /gridThw: \[t, h, w\]/);
  });

  it('rejects a frame count that is not a multiple of the temporal patch', async () => {
    await expectOmniError(() => encoder.encode([{ ...videoInput, frames: 5 }]), 'BAD_INPUT', /5 frames; the count must be a positive multiple of temporal_patch_size 2/);
    await expectOmniError(() => encoder.encode([{ ...videoInput, frames: 0 }]), 'BAD_INPUT', /0 frames/);
    await expectOmniError(() => encoder.encode([{ ...videoInput, frames: 4 }]), 'BAD_INPUT', /4 frames make 2 temporal patches, but gridThw t = 3/);
  });

  it('rejects empty calls, missing arrays and non-finite pixels', async () => {
    await expectOmniError(() => encoder.encode([]), 'BAD_INPUT', /non-empty array/);
    await expectOmniError(() => encoder.encode(imageInput as unknown as VisualInput[]), 'BAD_INPUT', /non-empty array/);
    await expectOmniError(() => encoder.encode([imageInput, { ...imageInput, pixelValues: new Float64Array(141120) as unknown as Float32Array }]), 'BAD_INPUT', /input 1: pixelValues holds no Float32Array/);
    const bad = imageInput.pixelValues.slice();
    bad[1176 * 7 + 3] = Infinity;
    await expectOmniError(() => encoder.encode([{ ...imageInput, pixelValues: bad }]), 'NUMERIC', /patch 7/);
  });

  it('rejects a config the weights do not fit, unknown formats and use after dispose', async () => {
    await expectOmniError(() => VisionEncoder.load(backend, tiny.checkpoint, { ...vision, intermediate: 48 }), 'SHAPE_MISMATCH', /gate_proj\.weight is \[64, 32\]/);
    await expectOmniError(() => VisionEncoder.load(backend, tiny.checkpoint, vision, { format: 'bf16' as WeightFormat }), 'BAD_INPUT', /bf16/);
    const spare = await VisionEncoder.load(backend, tiny.checkpoint, vision);
    spare.dispose();
    await expectOmniError(() => spare.encode([imageInput]), 'BAD_INPUT', /disposed/);
  });
});
