import { describe, expect, it } from 'vitest';
import { processImage, type RgbImage } from '../src/image.js';
import {
  FrameRateSampler, VideoPatchStream, framesSource, liveVideoPatches, processVideo, sampleFrameIndices, videoFromSource,
  type TimedFrame, type VideoTemporalPatch,
} from '../src/video.js';
import { goldenArray, maxAbsDiff } from './golden.js';

const code = (c: string) => expect.objectContaining({ code: c });
/** The golden video was processed with the image pixel limits (golden README), so frames keep their size. */
const GOLDEN_LIMITS = { minPixels: 3136, maxPixels: 12845056 };

async function goldenFrames(): Promise<RgbImage[]> {
  const frames = await goldenArray('video', 'frames_rgb');
  const [count, height, width] = frames.shape;
  const size = height * width * 3;
  return Array.from({ length: count }, (_, i) => ({ width, height, data: (frames.data as Uint8Array).slice(i * size, (i + 1) * size) }));
}

function concat(patches: VideoTemporalPatch[]): Float32Array {
  const out = new Float32Array(patches.reduce((a, p) => a + p.pixelValues.length, 0));
  let at = 0;
  for (const p of patches) { out.set(p.pixelValues, at); at += p.pixelValues.length; }
  return out;
}

describe('video against the golden processor output', () => {
  it('6 frames at 2 fps from a frame source: pixel_values_videos, video_grid_thw, second_per_grid_ts', async () => {
    const reference = await goldenArray('video', 'pixel_values_videos');
    const video = videoFromSource(framesSource(await goldenFrames(), 2), GOLDEN_LIMITS);
    expect(video.frameIndices).toEqual([0, 1, 2, 3, 4, 5]);
    expect(video.sampleFps).toBe(2);
    expect(video.gridThw).toEqual(Array.from((await goldenArray('video', 'video_grid_thw')).data));
    expect(video.secondPerGrid).toBe((await goldenArray('video', 'second_per_grid_ts')).data[0]);
    expect([video.patches, video.patchDim]).toEqual(reference.shape);
    const diff = maxAbsDiff(video.pixelValues, reference.data as Float32Array);
    console.log(`pixel_values_videos: max |Δ| ${diff}`);
    expect(diff).toBeLessThanOrEqual(1e-6);
  });

  it('incremental: one temporal patch per 2 frames, concatenating to the golden array', async () => {
    const reference = (await goldenArray('video', 'pixel_values_videos')).data as Float32Array;
    const stream = new VideoPatchStream({ ...GOLDEN_LIMITS, frames: 6 });
    const patches: VideoTemporalPatch[] = [];
    for (const frame of await goldenFrames()) {
      const patch = stream.push(frame);
      if (patch) patches.push(patch);
    }
    expect(stream.finish()).toBeNull();
    expect(patches.map((p) => [p.index, ...p.gridThw, p.secondPerGrid])).toEqual([[0, 1, 4, 6, 1], [1, 1, 4, 6, 1], [2, 1, 4, 6, 1]]);
    expect(maxAbsDiff(concat(patches), reference)).toBeLessThanOrEqual(1e-6);
  });

  it('live frames at 30 fps with timestamps: sampled at 2 fps, patched, equal to the golden array', async () => {
    const golden = await goldenFrames();
    const reference = (await goldenArray('video', 'pixel_values_videos')).data as Float32Array;
    const filler = { ...golden[0], data: new Uint8Array(golden[0].data.length).fill(9) };
    // Frame k shows at k/30 s; the golden frames sit on the 0.5 s ticks, filler everywhere else.
    const timed: TimedFrame[] = Array.from({ length: 80 }, (_, k) => ({ image: k % 15 === 0 ? golden[k / 15] : filler, timestampSeconds: k / 30 }));
    const patches: VideoTemporalPatch[] = [];
    for await (const p of liveVideoPatches(timed, { ...GOLDEN_LIMITS, frames: 6 })) patches.push(p);
    expect(patches.length).toBe(3);
    expect(maxAbsDiff(concat(patches), reference)).toBeLessThanOrEqual(1e-6);
  });

  it('an odd frame count repeats the last frame, in both forms', async () => {
    const golden = await goldenFrames();
    const reference = (await goldenArray('video', 'pixel_values_videos')).data as Float32Array;
    const five = processVideo(golden.slice(0, 5), GOLDEN_LIMITS);
    expect(five.gridThw).toEqual([3, 4, 6]);
    const perPatch = 24 * 1176;
    expect(maxAbsDiff(five.pixelValues.subarray(0, 2 * perPatch), reference.subarray(0, 2 * perPatch))).toBeLessThanOrEqual(1e-6);
    // The padded patch holds frame 4 twice: an image patch of frame 4 (an image is also duplicated in time).
    expect(maxAbsDiff(five.pixelValues.subarray(2 * perPatch), processImage(golden[4], GOLDEN_LIMITS).pixelValues)).toBe(0);
    const stream = new VideoPatchStream({ ...GOLDEN_LIMITS, frames: 5 });
    const patches = golden.slice(0, 5).map((f) => stream.push(f)).filter((p): p is VideoTemporalPatch => p !== null);
    patches.push(stream.finish()!);
    expect(maxAbsDiff(concat(patches), five.pixelValues)).toBe(0);
  });

  it('resizes frames with the video pixel limits (default min 128·28·28 upscales small frames)', () => {
    const frame = { width: 100, height: 60, data: new Uint8Array(100 * 60 * 3).map((_, i) => (i * 7) % 256) };
    const video = processVideo([frame, frame, frame, frame]);
    expect([video.height, video.width, ...video.gridThw]).toEqual([252, 420, 2, 18, 30]);
    const stream = new VideoPatchStream({ frames: 4 });
    stream.push(frame);
    expect(stream.frameSize).toEqual({ height: 252, width: 420 });
    expect(maxAbsDiff(stream.push(frame)!.pixelValues, video.pixelValues.subarray(0, 18 * 30 * 1176))).toBe(0);
  });

  it('refuses empty clips, frames of the wrong size, too many frames and bad options', async () => {
    const golden = await goldenFrames();
    const small = { width: 28, height: 28, data: new Uint8Array(28 * 28 * 3) };
    expect(() => processVideo([])).toThrow(code('BAD_INPUT'));
    expect(() => processVideo([golden[0], small])).toThrow(code('BAD_INPUT'));
    expect(() => processVideo([golden[0], { ...golden[1], data: golden[1].data.subarray(3) }])).toThrow(code('BAD_INPUT'));
    expect(() => processVideo(new Array(769).fill(small))).toThrow(code('BAD_INPUT'));
    expect(() => processVideo([{ width: 0, height: 0, data: new Uint8Array(0) }])).toThrow(code('BAD_INPUT'));
    const stream = new VideoPatchStream(GOLDEN_LIMITS);
    stream.push(golden[0]);
    expect(() => stream.push(small)).toThrow(code('BAD_INPUT'));
    expect(() => new VideoPatchStream({ frames: 0 })).toThrow(code('BAD_INPUT'));
    expect(() => new VideoPatchStream({ fps: -2 })).toThrow(code('BAD_INPUT'));
    expect(() => framesSource([], 2)).toThrow(code('BAD_INPUT'));
    expect(() => framesSource(golden, 0)).toThrow(code('BAD_INPUT'));
    expect(() => framesSource(golden, 2).frame(6)).toThrow(code('BAD_INPUT'));
  });
});

describe('sampleFrameIndices (qwen-omni-utils smart_nframes, fact sheet §4.2)', () => {
  it('10 s at 30 fps → 20 frames at round(linspace(0, 299, 20))', () => {
    expect(sampleFrameIndices(300, 30)).toEqual([0, 16, 31, 47, 63, 79, 94, 110, 126, 142, 157, 173, 189, 205, 220, 236, 252, 268, 283, 299]);
  });

  it('short clips get at least 4 frames, capped by the clip and floored to even', () => {
    expect(sampleFrameIndices(40, 25)).toEqual([0, 13, 26, 39]); // 1.6 s → 3.2 → raised to 4
    expect(sampleFrameIndices(3, 30)).toEqual([0, 2]); // only 3 frames: the cap is 2
    expect(sampleFrameIndices(7, 2)).toEqual([0, 1, 2, 4, 5, 6]); // 7 frames at 2 fps → 7 → floored to 6
  });

  it('long clips are capped at 768 frames', () => {
    const indices = sampleFrameIndices(3600, 1); // one hour at 1 fps would give 7200
    expect(indices.length).toBe(768);
    expect([indices[0], indices[767]]).toEqual([0, 3599]);
  });

  it('refuses a single-frame clip and bad arguments', () => {
    expect(() => sampleFrameIndices(1, 30)).toThrow(code('BAD_INPUT'));
    expect(() => sampleFrameIndices(0, 30)).toThrow(code('BAD_INPUT'));
    expect(() => sampleFrameIndices(10, 0)).toThrow(code('BAD_INPUT'));
    expect(() => sampleFrameIndices(10, 30, { fps: NaN })).toThrow(code('BAD_INPUT'));
  });
});

describe('FrameRateSampler', () => {
  it('keeps every 15th frame of a 30 fps camera at 2 fps', () => {
    const sampler = new FrameRateSampler(2);
    const kept = Array.from({ length: 91 }, (_, k) => k).filter((k) => sampler.accept(100 + k / 30));
    expect(kept).toEqual([0, 15, 30, 45, 60, 75, 90]);
  });

  it('keeps every frame of a jittery 2 fps source, and skips ticks with no frame', () => {
    const jittery = new FrameRateSampler(2);
    expect([0, 0.497, 1.003, 1.499, 2.002].map((t) => jittery.accept(t))).toEqual([true, true, true, true, true]);
    const gappy = new FrameRateSampler(2);
    expect([0, 0.2, 1.7, 1.8, 2.0, 2.4, 2.5].map((t) => gappy.accept(t))).toEqual([true, false, true, false, true, false, true]);
  });

  it('refuses timestamps that go backwards or are not finite, and bad settings', () => {
    const sampler = new FrameRateSampler();
    sampler.accept(1);
    expect(() => sampler.accept(0.5)).toThrow(code('BAD_INPUT'));
    expect(() => sampler.accept(NaN)).toThrow(code('BAD_INPUT'));
    expect(() => new FrameRateSampler(0)).toThrow(code('BAD_INPUT'));
    expect(() => new FrameRateSampler(2, 0.3)).toThrow(code('BAD_INPUT'));
  });
});
