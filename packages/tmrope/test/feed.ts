// Test plumbing: golden ids split back into prompt segments, and a TmropeStream fed segment by
// segment in random pieces, following the token runs of the expanded ids.
import type { TmropeConfig, TmropeStream } from '../src/index.js';
import type { Prompt, Segment } from './reference.js';

/** A small seeded generator (mulberry32) for reproducible random splits. */
export function seeded(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % n);
  };
}

/** The segments of an expanded prompt, taking media lengths from the prompt's lists in order. */
export function segmentsOf(p: Prompt, config: TmropeConfig): Segment[] {
  const t = config.tokens;
  const out: Segment[] = [];
  let [image, video, audio] = [0, 0, 0];
  let text: number[] = [];
  const flush = () => { if (text.length) out.push({ kind: 'text', ids: text }); text = []; };
  for (let i = 0; i < p.ids.length; i++) {
    const id = p.ids[i];
    const inner = p.ids[i + 1];
    if (id === t.audioStart && inner === t.audio) {
      flush();
      out.push({ kind: 'audio', featureLength: p.audioFeatureLengths[audio++] });
      i = p.ids.indexOf(t.audioEnd, i);
    } else if (id === t.visionStart && (inner === t.image || inner === t.video || inner === t.audioStart)) {
      flush();
      if (inner === t.image) out.push({ kind: 'image', grid: p.imageGrids[image++] });
      else if (inner === t.video) out.push({ kind: 'video', grid: p.videoGrids[video], secondPerGrid: p.secondPerGrids[video++] });
      else out.push({ kind: 'video', grid: p.videoGrids[video], secondPerGrid: p.secondPerGrids[video++], featureLength: p.audioFeatureLengths[audio++] });
      i = p.ids.indexOf(t.visionEnd, i);
    } else {
      text.push(id);
    }
  }
  flush();
  return out;
}

/** Splits n into random positive parts. */
function parts(n: number, rand: (k: number) => number): number[] {
  const out: number[] = [];
  while (n > 0) {
    const k = 1 + rand(Math.min(n, 60));
    out.push(k);
    n -= k;
  }
  return out;
}

/**
 * Feeds `p` to `stream` in random pieces: text split anywhere, audio in blocks, videos by
 * patches or loose tokens, audio-in-video run by run as the ids interleave them. Returns the
 * positions of every call, in order.
 */
export function feedStream(stream: TmropeStream, p: Prompt, config: TmropeConfig, rand: (n: number) => number): Int32Array[] {
  const t = config.tokens;
  const m = config.spatialMergeSize;
  const out: Int32Array[] = [];
  let at = 0;
  for (const s of segmentsOf(p, config)) {
    if (s.kind === 'text') {
      for (const n of parts(s.ids.length, rand)) { out.push(stream.text(s.ids.slice(0, n))); s.ids = s.ids.slice(n); }
    } else if (s.kind === 'audio') {
      out.push(stream.beginAudio());
      const start = p.ids.indexOf(t.audioStart, at);
      const n = p.ids.indexOf(t.audioEnd, start) - start - 1;
      for (const k of parts(n, rand)) out.push(stream.audioBlock(k));
      out.push(stream.endAudio());
      at = start + n + 2;
    } else if (s.kind === 'image') {
      out.push(stream.image(s.grid));
      at = p.ids.indexOf(t.visionEnd, at) + 1;
    } else {
      const shape = { gridHeight: s.grid[1], gridWidth: s.grid[2], secondPerGrid: s.secondPerGrid };
      const perPatch = (s.grid[1] / m) * (s.grid[2] / m);
      const start = p.ids.indexOf(t.visionStart, at);
      if (s.featureLength === undefined) {
        out.push(stream.beginVideo(shape));
        let left = s.grid[0] * perPatch;
        while (left > 0) {
          if (left % perPatch === 0 && rand(2) === 0) { out.push(stream.videoPatch()); left -= perPatch; continue; }
          const k = 1 + rand(left);
          out.push(stream.videoTokens(k));
          left -= k;
        }
        out.push(stream.endVideo());
        at = p.ids.indexOf(t.visionEnd, start) + 1;
        continue;
      }
      out.push(stream.beginAudioInVideo(shape));
      let i = start + 2;
      while (p.ids[i] !== t.audioEnd) {
        const id = p.ids[i];
        let n = 0;
        while (p.ids[i + n] === id) n++;
        if (rand(3) === 0) out.push(stream.audioInVideoChunk(id === t.video ? { video: n, audio: 0 } : { video: 0, audio: n }));
        else for (const k of parts(n, rand)) out.push(id === t.video ? stream.videoTokens(k) : stream.audioBlock(k));
        i += n;
      }
      out.push(stream.endAudioInVideo());
      at = i + 2;
    }
  }
  return out;
}

/** Stream-major pieces → one stream-major array. */
export function joinPositions(pieces: Int32Array[]): Int32Array {
  const n = pieces.reduce((s, p) => s + p.length / 3, 0);
  const out = new Int32Array(3 * n);
  let at = 0;
  for (const p of pieces) {
    const m = p.length / 3;
    for (let s = 0; s < 3; s++) out.set(p.subarray(s * m, (s + 1) * m), s * n + at);
    at += m;
  }
  return out;
}
