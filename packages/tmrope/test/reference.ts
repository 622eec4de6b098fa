// An independent model of the reference for synthetic prompts the golden files do not cover:
// the processor's placeholder expansion (float64 chunk values, fact sheet §9) and get_rope_index
// as a list of position pieces where each piece starts one past the largest position of the
// piece before it (fact sheet §5.2). Written from the fact sheet, structured unlike src/.
import type { GridThw, TmropeConfig } from '../src/index.js';

export type Segment =
  | { kind: 'text'; ids: number[] }
  | { kind: 'audio'; featureLength: number }
  | { kind: 'image'; grid: GridThw }
  | { kind: 'video'; grid: GridThw; secondPerGrid: number; featureLength?: number };

export interface Prompt {
  ids: number[];
  imageGrids: GridThw[];
  videoGrids: GridThw[];
  secondPerGrids: number[];
  audioFeatureLengths: number[];
  useAudioInVideo: boolean;
}

const tokensOfAudio = (frames: number) => Math.floor((Math.floor((frames - 1) / 2) + 1 - 2) / 2) + 1;

/** Start/end index pairs of runs of values, a new run whenever a value reaches the next boundary (one boundary per value). */
function splitByValue(values: number[], size: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let from = 0;
  let boundary = size;
  values.forEach((v, i) => {
    if (v >= boundary) {
      out.push([from, i]);
      from = i;
      boundary += size;
    }
  });
  out.push([from, values.length]);
  return out;
}

/** The processor: expands each segment into its ids (float64 time values for the interleaving). */
export function expandPrompt(segments: Segment[], config: TmropeConfig, useAudioInVideo: boolean): Prompt {
  const t = config.tokens;
  const m = config.spatialMergeSize;
  const prompt: Prompt = { ids: [], imageGrids: [], videoGrids: [], secondPerGrids: [], audioFeatureLengths: [], useAudioInVideo };
  const push = (id: number, n = 1) => { for (let i = 0; i < n; i++) prompt.ids.push(id); };
  for (const s of segments) {
    if (s.kind === 'text') prompt.ids.push(...s.ids);
    else if (s.kind === 'audio') {
      prompt.audioFeatureLengths.push(s.featureLength);
      push(t.audioStart); push(t.audio, tokensOfAudio(s.featureLength)); push(t.audioEnd);
    } else if (s.kind === 'image') {
      prompt.imageGrids.push(s.grid);
      push(t.visionStart); push(t.image, (s.grid[0] * s.grid[1] * s.grid[2]) / (m * m)); push(t.visionEnd);
    } else {
      prompt.videoGrids.push(s.grid);
      prompt.secondPerGrids.push(s.secondPerGrid);
      const perFrame = (s.grid[1] / m) * (s.grid[2] / m);
      if (!useAudioInVideo) {
        push(t.visionStart); push(t.video, s.grid[0] * perFrame); push(t.visionEnd);
        continue;
      }
      prompt.audioFeatureLengths.push(s.featureLength!);
      const size = Math.trunc(config.positionIdPerSeconds * config.secondsPerChunk);
      const times: number[] = [];
      for (let f = 0; f < s.grid[0]; f++) for (let k = 0; k < perFrame; k++) times.push(f * s.secondPerGrid * config.positionIdPerSeconds);
      const videoRuns = splitByValue(times, size);
      const audioRuns = splitByValue(Array.from({ length: tokensOfAudio(s.featureLength!) }, (_, k) => k), size);
      push(t.visionStart); push(t.audioStart);
      for (let j = 0; j < Math.max(videoRuns.length, audioRuns.length); j++) {
        if (videoRuns[j]) push(t.video, videoRuns[j][1] - videoRuns[j][0]);
        if (audioRuns[j]) push(t.audio, audioRuns[j][1] - audioRuns[j][0]);
      }
      push(t.audioEnd); push(t.visionEnd);
    }
  }
  return prompt;
}

type Piece = [number[], number[], number[]];

/** get_rope_index as pieces: [T, H, W] rows per token of each piece, then the deltas. */
export function referencePositions(p: Prompt, config: TmropeConfig): { rows: Piece; ropeDeltas: number } {
  const t = config.tokens;
  const m = config.spatialMergeSize;
  const pps = config.positionIdPerSeconds;
  const pieces: Piece[] = [];
  const after = () => (pieces.length === 0 ? 0 : Math.max(...pieces[pieces.length - 1].flat()) + 1);
  const line = (n: number): Piece => {
    const s = after();
    const r = Array.from({ length: n }, (_, i) => s + i);
    return [r, [...r], [...r]];
  };
  const grid = (g: GridThw, spg: number): Piece => {
    const s = after();
    const out: Piece = [[], [], []];
    for (let f = 0; f < g[0]; f++) {
      const time = Math.trunc(Math.fround(Math.fround(f * Math.fround(spg)) * pps));
      for (let r = 0; r < g[1] / m; r++) {
        for (let c = 0; c < g[2] / m; c++) { out[0].push(s + time); out[1].push(s + r); out[2].push(s + c); }
      }
    }
    return out;
  };
  const slice = (piece: Piece, a: number, b: number): Piece => [piece[0].slice(a, b), piece[1].slice(a, b), piece[2].slice(a, b)];
  let cursor = 0;
  let [image, video, audio] = [0, 0, 0];
  const nextOf = (id: number, from: number) => { const i = p.ids.indexOf(id, from); return i < 0 ? Infinity : i; };
  for (;;) {
    const ends = [
      image < p.imageGrids.length ? nextOf(t.image, cursor) : Infinity,
      video < p.videoGrids.length ? nextOf(t.video, cursor) : Infinity,
      audio < p.audioFeatureLengths.length ? nextOf(t.audio, cursor) : Infinity,
    ];
    const first = Math.min(...ends);
    if (first === Infinity) break;
    if (first === ends[1] && p.useAudioInVideo) {
      if (first - 2 > cursor) pieces.push(line(first - 2 - cursor));
      const bos = line(1);
      pieces.push(bos, bos);
      const frames = grid(p.videoGrids[video], p.secondPerGrids[video]);
      const s = after();
      const n = tokensOfAudio(p.audioFeatureLengths[audio]);
      const sound: Piece = [[], [], []];
      for (let k = 0; k < n; k++) for (const row of sound) row.push(s + k);
      const size = Math.trunc(pps * config.secondsPerChunk);
      const videoRuns = splitByValue(frames[0].map((v) => v - s), size);
      const audioRuns = splitByValue(sound[0].map((v) => v - s), size);
      for (let j = 0; j < Math.max(videoRuns.length, audioRuns.length); j++) {
        if (videoRuns[j]) pieces.push(slice(frames, ...videoRuns[j]));
        if (audioRuns[j]) pieces.push(slice(sound, ...audioRuns[j]));
      }
      const eos = line(1);
      pieces.push(eos, eos);
      cursor = first + frames[0].length + n + 2;
      video++;
      audio++;
      continue;
    }
    if (first - 1 > cursor) pieces.push(line(first - 1 - cursor));
    pieces.push(line(1));
    let body: Piece;
    if (first === ends[2]) body = line(tokensOfAudio(p.audioFeatureLengths[audio++]));
    else if (first === ends[0]) body = grid(p.imageGrids[image++], 1);
    else { body = grid(p.videoGrids[video], p.secondPerGrids[video]); video++; }
    pieces.push(body);
    pieces.push(line(1));
    cursor = first + body[0].length + 1;
  }
  if (cursor < p.ids.length) pieces.push(line(p.ids.length - cursor));
  const rows: Piece = [pieces.flatMap((x) => x[0]), pieces.flatMap((x) => x[1]), pieces.flatMap((x) => x[2])];
  return { rows, ropeDeltas: Math.max(...rows.flat()) + 1 - p.ids.length };
}
