/**
 * TMRoPE position ids (fact sheet §5.2): the 3 rotary streams (T, H, W) of
 * every token of a Thinker or Talker sequence, as the reference's
 * `get_rope_index` gives them, built one chunk at a time by `TmropeStream`
 * (text, an image, a video's temporal patches, audio blocks, 2-second
 * audio-in-video chunks) or for a whole sequence of ids by `tmropePositions`.
 *
 * Positions are stream-major: `positions[s * n + i]` is stream s (0 = T,
 * 1 = H, 2 = W) of token i, the layout the Backend's `rotary` reads.
 */
import { OmniError, type MultimodalTokenIds, type TalkerConfig, type ThinkerConfig } from '@omniweb/core';

/** The numbers `get_rope_index` reads from config.json; nothing is assumed. */
export interface TmropeConfig {
  tokens: MultimodalTokenIds;
  /** Patches merged per side into one LLM token (vision `spatial_merge_size`). */
  spatialMergeSize: number;
  /** Temporal position ids per second of media (25: one per 40 ms audio token). */
  positionIdPerSeconds: number;
  /** Audio-in-video interleaving period in seconds (2). */
  secondsPerChunk: number;
}

/** A media grid in patches, as `image_grid_thw` / `video_grid_thw` rows: [t, h, w]. */
export type GridThw = readonly [t: number, h: number, w: number];

/** Height and width of a video in patches, and its seconds per temporal patch (`second_per_grid_ts`). */
export interface VideoShape {
  gridHeight: number;
  gridWidth: number;
  secondPerGrid: number;
}

/** Tokens of one audio-in-video chunk, video first (fact sheet §9). */
export interface AudioInVideoChunk {
  video: number;
  audio: number;
}

const TOKEN_NAMES: Record<keyof MultimodalTokenIds, string> = {
  audio: '<|AUDIO|>',
  audioStart: '<|audio_bos|>',
  audioEnd: '<|audio_eos|>',
  image: '<|IMAGE|>',
  video: '<|VIDEO|>',
  visionStart: '<|vision_bos|>',
  visionEnd: '<|vision_eos|>',
};

function badInput(message: string): OmniError {
  return new OmniError('BAD_INPUT', message);
}

function isCount(v: unknown, min: number): v is number {
  return Number.isSafeInteger(v) && (v as number) >= min;
}

function checkConfig(config: TmropeConfig, where: string): void {
  if (config === null || typeof config !== 'object' || config.tokens === null || typeof config.tokens !== 'object') {
    throw badInput(`${where}: config must be { tokens, spatialMergeSize, positionIdPerSeconds, secondsPerChunk } (see thinkerTmropeConfig)`);
  }
  const seen = new Map<number, string>();
  for (const key of Object.keys(TOKEN_NAMES) as (keyof MultimodalTokenIds)[]) {
    const id = config.tokens[key];
    if (!isCount(id, 0)) throw badInput(`${where}: config.tokens.${key} (${TOKEN_NAMES[key]}) is ${String(id)}; expected a token id ≥ 0`);
    const other = seen.get(id);
    if (other !== undefined) throw badInput(`${where}: config.tokens.${key} and config.tokens.${other} are both ${id}; each special token needs its own id`);
    seen.set(id, key);
  }
  if (!isCount(config.spatialMergeSize, 1)) throw badInput(`${where}: config.spatialMergeSize is ${String(config.spatialMergeSize)}; expected an integer ≥ 1`);
  for (const key of ['positionIdPerSeconds', 'secondsPerChunk'] as const) {
    const v = config[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw badInput(`${where}: config.${key} is ${String(v)}; expected a positive number`);
  }
  if (tokensPerChunk(config) < 1) {
    throw badInput(`${where}: positionIdPerSeconds × secondsPerChunk = ${config.positionIdPerSeconds * config.secondsPerChunk} gives no position id per chunk`);
  }
}

/** Position ids per audio-in-video chunk; the reference truncates with `int()` (fact sheet §5.2). */
function tokensPerChunk(config: TmropeConfig): number {
  return Math.trunc(config.positionIdPerSeconds * config.secondsPerChunk);
}

function pickTokens(tokens: MultimodalTokenIds): MultimodalTokenIds {
  const { audio, audioStart, audioEnd, image, video, visionStart, visionEnd } = tokens;
  return { audio, audioStart, audioEnd, image, video, visionStart, visionEnd };
}

/** The Thinker's TMRoPE numbers from its parsed config. */
export function thinkerTmropeConfig(config: ThinkerConfig): TmropeConfig {
  if (config === null || typeof config !== 'object' || !config.tokens || !config.vision) {
    throw badInput('thinkerTmropeConfig takes the `thinker` section of a parsed OmniConfig (parseOmniConfig / loadOmniConfig)');
  }
  return {
    tokens: pickTokens(config.tokens),
    spatialMergeSize: config.vision.spatialMergeSize,
    positionIdPerSeconds: config.positionIdPerSeconds,
    secondsPerChunk: config.secondsPerChunk,
  };
}

/** The Talker's TMRoPE numbers: it runs `get_rope_index` over the prompt with its own copy of them (fact sheet §7.2 step 5). */
export function talkerTmropeConfig(config: TalkerConfig): TmropeConfig {
  if (config === null || typeof config !== 'object' || !config.tokens) {
    throw badInput('talkerTmropeConfig takes the `talker` section of a parsed OmniConfig (parseOmniConfig / loadOmniConfig)');
  }
  return {
    tokens: pickTokens(config.tokens),
    spatialMergeSize: config.spatialMergeSize,
    positionIdPerSeconds: config.positionIdPerSeconds,
    secondsPerChunk: config.secondsPerChunk,
  };
}

/**
 * `<|AUDIO|>` tokens of a clip with `featureLength` valid mel frames (the sum
 * of its `feature_attention_mask`): the audio tower's two stride-2 stages,
 * a = ⌊(F − 1)/2⌋ + 1, N = ⌊(a − 2)/2⌋ + 1 (fact sheet §3.2 step 7).
 */
export function audioTokenCount(featureLength: number): number {
  if (!isCount(featureLength, 1)) throw badInput(`audioTokenCount: featureLength is ${String(featureLength)}; expected the number of valid mel frames, an integer ≥ 1`);
  const afterConv = Math.floor((featureLength - 1) / 2) + 1;
  return Math.floor((afterConv - 2) / 2) + 1;
}

function checkGrid(grid: GridThw, mergeSize: number, what: string): void {
  if (grid === null || typeof grid !== 'object' || grid.length !== 3 || ![0, 1, 2].every((i) => isCount(grid[i], 1))) {
    throw badInput(`${what}: grid is ${JSON.stringify(Array.from((grid ?? []) as ArrayLike<number>))}; expected [t, h, w] in patches, integers ≥ 1`);
  }
  if (grid[1] % mergeSize !== 0 || grid[2] % mergeSize !== 0) {
    throw badInput(`${what}: grid [${grid.join(', ')}] has h or w not a multiple of spatialMergeSize ${mergeSize}; the vision encoder merges ${mergeSize}×${mergeSize} patches per token`);
  }
}

function checkShape(shape: VideoShape, mergeSize: number, what: string): void {
  if (shape === null || typeof shape !== 'object') throw badInput(`${what}: expected { gridHeight, gridWidth, secondPerGrid }`);
  checkGrid([1, shape.gridHeight, shape.gridWidth], mergeSize, what);
  if (typeof shape.secondPerGrid !== 'number' || !Number.isFinite(shape.secondPerGrid) || shape.secondPerGrid < 0) {
    throw badInput(`${what}: secondPerGrid is ${String(shape.secondPerGrid)}; expected the seconds per temporal patch (temporal_patch_size / fps), a number ≥ 0`);
  }
}

/**
 * Temporal offset of temporal patch t: `(t · second_per_grid · 25).long()`
 * with the product in float32, as the reference computes it (§5.2; images use
 * a second per grid of 1).
 */
function temporalOffset(t: number, secondPerGrid: number, positionIdPerSeconds: number): number {
  return Math.trunc(Math.fround(Math.fround(t * Math.fround(secondPerGrid)) * positionIdPerSeconds));
}

/**
 * The reference's chunk splitter (`get_chunked_index`, §9): a token whose
 * time value reaches the next chunk boundary opens a new chunk, but the
 * boundary moves one chunk per token, so a gap of several chunks spreads over
 * the next tokens instead of skipping chunks.
 */
class ChunkCounter {
  #index = 0;
  #boundary = 1;
  constructor(private readonly perChunk: number) {}

  /** The chunk of the next token, whose time value (relative to the block start) is `value`. */
  next(value: number): number {
    if (value >= this.#boundary * this.perChunk) {
      this.#index++;
      this.#boundary++;
    }
    return this.#index;
  }
}

/**
 * How an audio-in-video block interleaves: per chunk j, the count of video
 * tokens then audio tokens (§5.2, §9). Both the prompt layout (tokenizer) and
 * the positions (TmropeStream) follow it. The processor compares t·spg·25 in
 * float64 while the model truncates its float32 product; they agree unless
 * float32 rounding carries a value across a multiple of the chunk size, and
 * this follows the model so that ids and positions always agree.
 */
export function audioInVideoChunks(grid: GridThw, secondPerGrid: number, audioTokens: number, config: TmropeConfig): AudioInVideoChunk[] {
  checkConfig(config, 'audioInVideoChunks');
  checkGrid(grid, config.spatialMergeSize, 'audioInVideoChunks');
  checkShape({ gridHeight: grid[1], gridWidth: grid[2], secondPerGrid }, config.spatialMergeSize, 'audioInVideoChunks');
  if (!isCount(audioTokens, 1)) throw badInput(`audioInVideoChunks: audioTokens is ${String(audioTokens)}; expected an integer ≥ 1 (audioTokenCount of the video's soundtrack)`);
  const perChunk = tokensPerChunk(config);
  const perPatch = (grid[1] / config.spatialMergeSize) * (grid[2] / config.spatialMergeSize);
  const video: number[] = [];
  const videoChunks = new ChunkCounter(perChunk);
  for (let t = 0; t < grid[0]; t++) {
    const offset = temporalOffset(t, secondPerGrid, config.positionIdPerSeconds);
    for (let k = 0; k < perPatch; k++) {
      const j = videoChunks.next(offset);
      video[j] = (video[j] ?? 0) + 1;
    }
  }
  const audio: number[] = [];
  const audioChunks = new ChunkCounter(perChunk);
  for (let k = 0; k < audioTokens; k++) {
    const j = audioChunks.next(k);
    audio[j] = (audio[j] ?? 0) + 1;
  }
  return Array.from({ length: Math.max(video.length, audio.length) }, (_, j) => ({ video: video[j] ?? 0, audio: audio[j] ?? 0 }));
}

type Block =
  | { kind: 'text' }
  | { kind: 'audio'; start: number }
  | { kind: 'video'; start: number; llmH: number; llmW: number; secondPerGrid: number; emitted: number; max: number }
  | {
      kind: 'audioInVideo';
      start: number;
      llmH: number;
      llmW: number;
      secondPerGrid: number;
      video: number;
      audio: number;
      videoChunks: ChunkCounter;
      audioChunks: ChunkCounter;
      /** Chunk and side (0 video, 1 audio) of the last token, as 2·chunk + side: tokens must come in that order. */
      phase: number;
      /** Largest position in the reference's last slice (the current chunk side). */
      phaseMax: number;
    };

/**
 * TMRoPE positions built chunk by chunk, in prompt order; appended this way
 * they equal `tmropePositions` of the whole sequence. Every method returns
 * the positions of exactly the tokens it covers, stream-major [3 · n]:
 * media methods include their wrapper tokens (`<|vision_bos|>`,
 * `<|audio_bos|>`, …), and `text` takes every other token.
 */
export class TmropeStream {
  readonly config: TmropeConfig;
  #length = 0;
  /** `get_rope_index` starts each piece at the largest position of the piece before it, plus one. */
  #next = 0;
  #max = -1;
  #block: Block = { kind: 'text' };
  readonly #mediaIds: ReadonlyMap<number, string>;

  constructor(config: TmropeConfig) {
    checkConfig(config, 'TmropeStream');
    this.config = { ...config, tokens: pickTokens(config.tokens) };
    this.#mediaIds = new Map((Object.keys(TOKEN_NAMES) as (keyof MultimodalTokenIds)[]).map((k) => [this.config.tokens[k], TOKEN_NAMES[k]]));
  }

  /** Tokens positioned so far. */
  get length(): number {
    return this.#length;
  }

  /** (largest position + 1) − length: decode token at cache length c sits at c + ropeDeltas (§5.2). */
  get ropeDeltas(): number {
    return this.#max + 1 - this.#length;
  }

  /** The position the next text token gets. */
  get nextPosition(): number {
    return this.#next;
  }

  /** Which media block is open ('text' when none). */
  get openBlock(): 'text' | 'audio' | 'video' | 'audioInVideo' {
    return this.#block.kind;
  }

  /** Plain tokens (text, role words, speaker bos, …): one step per token in all three streams. */
  text(ids: ArrayLike<number>): Int32Array {
    this.#expect('text', 'text');
    if (ids === null || typeof ids !== 'object' || typeof ids.length !== 'number') throw badInput('TmropeStream.text: ids must be an array of token ids');
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!isCount(id, 0)) throw badInput(`TmropeStream.text: ids[${i}] is ${String(id)}; expected a token id ≥ 0`);
      const name = this.#mediaIds.get(id);
      if (name !== undefined) {
        throw badInput(`TmropeStream.text: ids[${i}] is ${name} (${id}); media tokens get their positions from audio/image/video/audioInVideo (or their begin…/end… forms), which include the wrapper tokens`);
      }
    }
    return this.#sequential(ids.length);
  }

  /** A whole audio clip: `<|audio_bos|>`, its `<|AUDIO|>` tokens, `<|audio_eos|>`. */
  audio(featureLength: number): Int32Array {
    const n = audioTokenCount(featureLength);
    return concatPositions([this.beginAudio(), this.audioBlock(n), this.endAudio()]);
  }

  /** `<|audio_bos|>` of an audio clip whose tokens arrive block by block. */
  beginAudio(): Int32Array {
    this.#expect('text', 'beginAudio');
    const bos = this.#sequential(1);
    this.#block = { kind: 'audio', start: this.#next };
    return bos;
  }

  /**
   * The next `tokens` `<|AUDIO|>` tokens of the open audio clip, or of the open
   * audio-in-video block (one position per 40 ms in all three streams).
   */
  audioBlock(tokens: number): Int32Array {
    const block = this.#block;
    if (block.kind !== 'audio' && block.kind !== 'audioInVideo') {
      throw badInput(`TmropeStream.audioBlock: no audio is open (open block: ${block.kind}); call beginAudio or beginAudioInVideo first`);
    }
    if (!isCount(tokens, 1)) throw badInput(`TmropeStream.audioBlock: tokens is ${String(tokens)}; expected an integer ≥ 1`);
    if (block.kind === 'audio') return this.#sequential(tokens);
    const out = new Int32Array(3 * tokens);
    for (let k = 0; k < tokens; k++) {
      const index = block.audio++;
      this.#enterPhase(block, 2 * block.audioChunks.next(index) + 1, 'an audio token');
      const p = block.start + index;
      out[k] = out[tokens + k] = out[2 * tokens + k] = p;
      block.phaseMax = Math.max(block.phaseMax, p);
    }
    this.#emit(tokens, out);
    return out;
  }

  /** `<|audio_eos|>` of the open audio clip. */
  endAudio(): Int32Array {
    this.#expect('audio', 'endAudio');
    if (this.#next === (this.#block as Extract<Block, { kind: 'audio' }>).start) throw badInput('TmropeStream.endAudio: the audio clip has no tokens; feed them with audioBlock');
    this.#block = { kind: 'text' };
    return this.#sequential(1);
  }

  /** An image: `<|vision_bos|>`, its prod(grid)/merge² `<|IMAGE|>` tokens, `<|vision_eos|>`. */
  image(grid: GridThw): Int32Array {
    checkGrid(grid, this.config.spatialMergeSize, 'TmropeStream.image');
    // Images take 25 temporal ids per temporal patch, as a video of one second per grid (§5.2).
    const parts = [this.beginVideo({ gridHeight: grid[1], gridWidth: grid[2], secondPerGrid: 1 })];
    for (let t = 0; t < grid[0]; t++) parts.push(this.videoPatch());
    parts.push(this.endVideo());
    return concatPositions(parts);
  }

  /** A whole video without its audio: `<|vision_bos|>`, its `<|VIDEO|>` tokens, `<|vision_eos|>`. */
  video(grid: GridThw, secondPerGrid: number): Int32Array {
    checkGrid(grid, this.config.spatialMergeSize, 'TmropeStream.video');
    const parts = [this.beginVideo({ gridHeight: grid[1], gridWidth: grid[2], secondPerGrid })];
    for (let t = 0; t < grid[0]; t++) parts.push(this.videoPatch());
    parts.push(this.endVideo());
    return concatPositions(parts);
  }

  /** `<|vision_bos|>` of a video (without its audio) whose temporal patches arrive one by one. */
  beginVideo(shape: VideoShape): Int32Array {
    checkShape(shape, this.config.spatialMergeSize, 'TmropeStream.beginVideo');
    this.#expect('text', 'beginVideo');
    const bos = this.#sequential(1);
    const m = this.config.spatialMergeSize;
    this.#block = { kind: 'video', start: this.#next, llmH: shape.gridHeight / m, llmW: shape.gridWidth / m, secondPerGrid: shape.secondPerGrid, emitted: 0, max: -1 };
    return bos;
  }

  /** The tokens of the next temporal patch (2 frames) of the open video. */
  videoPatch(): Int32Array {
    const block = this.#block;
    if (block.kind !== 'video' && block.kind !== 'audioInVideo') {
      throw badInput(`TmropeStream.videoPatch: no video is open (open block: ${block.kind}); call beginVideo or beginAudioInVideo first`);
    }
    return this.videoTokens(block.llmH * block.llmW);
  }

  /**
   * The next `tokens` `<|VIDEO|>` tokens of the open video, in (t, h, w) raster
   * order: T = s + ⌊t · spg · 25⌋, H = s + row, W = s + column, where s is the
   * position after the video's bos (§5.2; H and W start at s, not at 0).
   */
  videoTokens(tokens: number): Int32Array {
    const block = this.#block;
    if (block.kind !== 'video' && block.kind !== 'audioInVideo') {
      throw badInput(`TmropeStream.videoTokens: no video is open (open block: ${block.kind}); call beginVideo or beginAudioInVideo first`);
    }
    if (!isCount(tokens, 1)) throw badInput(`TmropeStream.videoTokens: tokens is ${String(tokens)}; expected an integer ≥ 1`);
    const perPatch = block.llmH * block.llmW;
    const out = new Int32Array(3 * tokens);
    for (let k = 0; k < tokens; k++) {
      const index = block.kind === 'video' ? block.emitted++ : block.video++;
      const t = Math.floor(index / perPatch);
      const offset = temporalOffset(t, block.secondPerGrid, this.config.positionIdPerSeconds);
      const T = block.start + offset;
      const H = block.start + Math.floor((index % perPatch) / block.llmW);
      const W = block.start + (index % block.llmW);
      out[k] = T;
      out[tokens + k] = H;
      out[2 * tokens + k] = W;
      const max = Math.max(T, H, W);
      if (block.kind === 'video') {
        block.max = Math.max(block.max, max);
      } else {
        this.#enterPhase(block, 2 * block.videoChunks.next(offset), 'a video token');
        block.phaseMax = Math.max(block.phaseMax, max);
      }
    }
    this.#emit(tokens, out);
    return out;
  }

  /** `<|vision_eos|>` of the open video: the largest position of the video, plus one. */
  endVideo(): Int32Array {
    const block = this.#block;
    if (block.kind !== 'video') throw badInput(`TmropeStream.endVideo: no video is open (open block: ${block.kind})`);
    if (block.emitted === 0 || block.emitted % (block.llmH * block.llmW) !== 0) {
      throw badInput(`TmropeStream.endVideo: the video has ${block.emitted} tokens, not a whole number (≥ 1) of temporal patches of ${block.llmH * block.llmW}`);
    }
    this.#next = block.max + 1;
    this.#block = { kind: 'text' };
    return this.#sequential(1);
  }

  /**
   * `<|vision_bos|><|audio_bos|>` of a video with its audio interleaved
   * (use_audio_in_video): both take the same position (§10.10).
   */
  beginAudioInVideo(shape: VideoShape): Int32Array {
    checkShape(shape, this.config.spatialMergeSize, 'TmropeStream.beginAudioInVideo');
    this.#expect('text', 'beginAudioInVideo');
    const p = this.#next;
    const out = Int32Array.of(p, p, p, p, p, p);
    this.#emit(2, out);
    this.#next = p + 1;
    const m = this.config.spatialMergeSize;
    const perChunk = tokensPerChunk(this.config);
    this.#block = {
      kind: 'audioInVideo', start: p + 1, llmH: shape.gridHeight / m, llmW: shape.gridWidth / m, secondPerGrid: shape.secondPerGrid,
      video: 0, audio: 0, videoChunks: new ChunkCounter(perChunk), audioChunks: new ChunkCounter(perChunk), phase: 0, phaseMax: -1,
    };
    return out;
  }

  /** One chunk of the open audio-in-video block: its video tokens, then its audio tokens (see audioInVideoChunks). */
  audioInVideoChunk(chunk: AudioInVideoChunk): Int32Array {
    this.#expect('audioInVideo', 'audioInVideoChunk');
    if (chunk === null || typeof chunk !== 'object' || !isCount(chunk.video, 0) || !isCount(chunk.audio, 0) || chunk.video + chunk.audio === 0) {
      throw badInput(`TmropeStream.audioInVideoChunk: chunk is ${JSON.stringify(chunk)}; expected { video, audio } token counts, not both 0`);
    }
    const parts: Int32Array[] = [];
    if (chunk.video > 0) parts.push(this.videoTokens(chunk.video));
    if (chunk.audio > 0) parts.push(this.audioBlock(chunk.audio));
    return concatPositions(parts);
  }

  /**
   * `<|audio_eos|><|vision_eos|>`: one shared position, one past the largest
   * position of the last chunk side fed (the reference looks only at that last
   * piece, §5.2).
   */
  endAudioInVideo(): Int32Array {
    const block = this.#block;
    if (block.kind !== 'audioInVideo') throw badInput(`TmropeStream.endAudioInVideo: no audio-in-video block is open (open block: ${block.kind})`);
    const perPatch = block.llmH * block.llmW;
    if (block.video === 0 || block.video % perPatch !== 0 || block.audio === 0) {
      throw badInput(`TmropeStream.endAudioInVideo: the block has ${block.video} video tokens (whole patches of ${perPatch} needed, ≥ 1) and ${block.audio} audio tokens (≥ 1 needed)`);
    }
    const p = block.phaseMax + 1;
    const out = Int32Array.of(p, p, p, p, p, p);
    this.#emit(2, out);
    this.#next = p + 1;
    this.#block = { kind: 'text' };
    return out;
  }

  /** A whole audio-in-video block: bos pair, the chunks of `audioInVideoChunks`, eos pair. */
  audioInVideo(grid: GridThw, secondPerGrid: number, featureLength: number): Int32Array {
    const chunks = audioInVideoChunks(grid, secondPerGrid, audioTokenCount(featureLength), this.config);
    const parts = [this.beginAudioInVideo({ gridHeight: grid[1], gridWidth: grid[2], secondPerGrid })];
    for (const chunk of chunks) parts.push(this.audioInVideoChunk(chunk));
    parts.push(this.endAudioInVideo());
    return concatPositions(parts);
  }

  #expect(kind: Block['kind'], method: string): void {
    if (this.#block.kind !== kind) {
      const open = this.#block.kind === 'text' ? 'no media block is open' : `the ${this.#block.kind} block is still open; close it (end…) first`;
      throw badInput(`TmropeStream.${method}: ${open}`);
    }
  }

  #enterPhase(block: Extract<Block, { kind: 'audioInVideo' }>, phase: number, what: string): void {
    if (phase < block.phase) {
      const chunk = (p: number) => `${p % 2 === 0 ? 'video' : 'audio'} of chunk ${Math.floor(p / 2)}`;
      throw badInput(`TmropeStream: ${what} belongs to the ${chunk(phase)} but the ${chunk(block.phase)} was already fed; an audio-in-video block runs chunk by chunk, video before audio (audioInVideoChunks)`);
    }
    if (phase > block.phase) {
      block.phase = phase;
      block.phaseMax = -1;
    }
  }

  #sequential(n: number): Int32Array {
    const out = new Int32Array(3 * n);
    for (let i = 0; i < n; i++) out[i] = out[n + i] = out[2 * n + i] = this.#next + i;
    this.#emit(n, out);
    this.#next += n;
    return out;
  }

  #emit(n: number, positions: Int32Array): void {
    for (const p of positions) if (p > this.#max) this.#max = p;
    this.#length += n;
  }
}

/** Stream-major [3 · n] position pieces → one stream-major [3 · Σn]. */
export function concatPositions(parts: readonly Int32Array[]): Int32Array {
  const n = parts.reduce((sum, p) => sum + p.length / 3, 0);
  const out = new Int32Array(3 * n);
  let at = 0;
  for (const part of parts) {
    const m = part.length / 3;
    for (let s = 0; s < 3; s++) out.set(part.subarray(s * m, (s + 1) * m), s * n + at);
    at += m;
  }
  return out;
}

/** What `tmropePositions` needs besides the ids: the media of the prompt, in order of appearance. */
export interface TmropeInputs {
  inputIds: Int32Array | readonly number[];
  /** One [t, h, w] per image (`image_grid_thw`). */
  imageGrids?: readonly GridThw[];
  /** One [t, h, w] per video (`video_grid_thw`). */
  videoGrids?: readonly GridThw[];
  /** Seconds per temporal patch of each video (`video_second_per_grid`); required with videos. */
  secondPerGrids?: readonly number[];
  /** Valid mel frames of each audio clip (`feature_attention_mask.sum(-1)`), videos' soundtracks included, in prompt order. */
  audioFeatureLengths?: readonly number[];
  /** Videos carry their soundtrack interleaved by chunks (processor and model flag, §9). */
  useAudioInVideo?: boolean;
}

export interface TmropeResult {
  /** Stream-major [3 · L]: T, then H, then W. */
  positionIds: Int32Array;
  /** (largest position + 1) − L. */
  ropeDeltas: number;
}

function listOf<T>(value: readonly T[] | undefined, name: string): readonly T[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw badInput(`tmropePositions: ${name} must be an array`);
  return value;
}

/**
 * Position ids of a whole prompt (`get_rope_index`, fact sheet §5.2) from its
 * expanded ids: media blocks are recognised by their wrapper tokens and
 * checked against the grids and audio lengths, which are consumed in order.
 */
export function tmropePositions(inputs: TmropeInputs, config: TmropeConfig): TmropeResult {
  checkConfig(config, 'tmropePositions');
  if (inputs === null || typeof inputs !== 'object') throw badInput('tmropePositions: expected { inputIds, imageGrids?, videoGrids?, secondPerGrids?, audioFeatureLengths?, useAudioInVideo? }');
  const ids = inputs.inputIds;
  if (!(ids instanceof Int32Array) && !Array.isArray(ids)) throw badInput('tmropePositions: inputIds must be an Int32Array or an array of token ids');
  if (ids.length === 0) throw badInput('tmropePositions: inputIds is empty');
  const images = listOf(inputs.imageGrids, 'imageGrids');
  const videos = listOf(inputs.videoGrids, 'videoGrids');
  const seconds = listOf(inputs.secondPerGrids, 'secondPerGrids');
  const audios = listOf(inputs.audioFeatureLengths, 'audioFeatureLengths');
  if (videos.length !== seconds.length) throw badInput(`tmropePositions: ${videos.length} video grids but ${seconds.length} secondPerGrids; give one per video`);
  const withAudio = inputs.useAudioInVideo === true;
  const tok = config.tokens;
  const stream = new TmropeStream(config);
  const parts: Int32Array[] = [];
  let image = 0;
  let video = 0;
  let audio = 0;
  const at = (i: number) => (i < ids.length ? ids[i] : -1);
  const name = (id: number) => (Object.keys(TOKEN_NAMES) as (keyof MultimodalTokenIds)[]).find((k) => tok[k] === id);
  /** Checks that ids[i..i+n) are all `id`; returns i + n. */
  const run = (i: number, n: number, id: number, what: string): number => {
    for (let k = 0; k < n; k++) {
      if (at(i + k) !== id) throw badInput(`tmropePositions: ${what} needs ${n} ${TOKEN_NAMES[name(id)!]} tokens from index ${i}; index ${i + k} holds ${at(i + k) === -1 ? 'the end of the ids' : at(i + k)}`);
    }
    return i + n;
  };
  const close = (i: number, id: number, what: string): number => {
    if (at(i) !== id) throw badInput(`tmropePositions: ${what} must end with ${TOKEN_NAMES[name(id)!]} at index ${i}, found ${at(i) === -1 ? 'the end of the ids' : at(i)} (wrong grid or audio length for this block?)`);
    return i + 1;
  };
  const next = <T>(list: readonly T[], index: number, what: string, i: number): T => {
    if (index >= list.length) throw badInput(`tmropePositions: the ${what} block at index ${i} is ${what} ${index + 1}, but only ${list.length} ${what} inputs were given`);
    return list[index];
  };

  let textStart = 0;
  let i = 0;
  const flushText = (end: number) => {
    if (end > textStart) parts.push(stream.text(ids.slice(textStart, end)));
  };
  while (i < ids.length) {
    const id = ids[i];
    if (id === tok.visionStart) {
      flushText(i);
      const inner = at(i + 1);
      if (inner === tok.image) {
        const grid = next(images, image++, 'image', i);
        checkGrid(grid, config.spatialMergeSize, `tmropePositions: image ${image - 1}`);
        const n = (grid[0] * grid[1] * grid[2]) / config.spatialMergeSize ** 2;
        i = close(run(i + 1, n, tok.image, `image ${image - 1} (grid [${grid.join(', ')}])`), tok.visionEnd, `image ${image - 1}`);
        parts.push(stream.image(grid));
      } else if (inner === tok.video && !withAudio) {
        const grid = next(videos, video, 'video', i);
        checkGrid(grid, config.spatialMergeSize, `tmropePositions: video ${video}`);
        const n = (grid[0] * grid[1] * grid[2]) / config.spatialMergeSize ** 2;
        i = close(run(i + 1, n, tok.video, `video ${video} (grid [${grid.join(', ')}])`), tok.visionEnd, `video ${video}`);
        parts.push(stream.video(grid, seconds[video++]));
      } else if (inner === tok.audioStart && withAudio) {
        const grid = next(videos, video, 'video', i);
        const featureLength = next(audios, audio, 'audio', i);
        const chunks = audioInVideoChunks(grid, seconds[video], audioTokenCount(featureLength), config);
        let k = i + 2;
        for (const [j, chunk] of chunks.entries()) {
          k = run(k, chunk.video, tok.video, `chunk ${j} of video ${video} (with audio ${audio})`);
          k = run(k, chunk.audio, tok.audio, `chunk ${j} of video ${video} (with audio ${audio})`);
        }
        i = close(close(k, tok.audioEnd, `video ${video} with audio`), tok.visionEnd, `video ${video} with audio`);
        parts.push(stream.audioInVideo(grid, seconds[video++], featureLength));
        audio++;
      } else if (inner === tok.video || inner === tok.audioStart) {
        throw badInput(`tmropePositions: the video at index ${i} is ${inner === tok.video ? 'without' : 'with'} interleaved audio but useAudioInVideo is ${withAudio}; the ids and the flag must agree (§9)`);
      } else {
        throw badInput(`tmropePositions: ${TOKEN_NAMES.visionStart} at index ${i} is followed by ${inner === -1 ? 'the end of the ids' : inner}, not by ${TOKEN_NAMES.image}, ${TOKEN_NAMES.video} or ${TOKEN_NAMES.audioStart}`);
      }
      textStart = i;
    } else if (id === tok.audioStart) {
      flushText(i);
      const featureLength = next(audios, audio, 'audio', i);
      const n = audioTokenCount(featureLength);
      i = close(run(i + 1, n, tok.audio, `audio ${audio} (${featureLength} mel frames)`), tok.audioEnd, `audio ${audio}`);
      parts.push(stream.audio(featureLength));
      audio++;
      textStart = i;
    } else if (name(id) !== undefined) {
      throw badInput(`tmropePositions: ${TOKEN_NAMES[name(id)!]} at index ${i} is outside a media block; media placeholders come as ${TOKEN_NAMES.visionStart}…${TOKEN_NAMES.visionEnd} or ${TOKEN_NAMES.audioStart}…${TOKEN_NAMES.audioEnd}`);
    } else {
      i++;
    }
  }
  flushText(ids.length);
  const unused = [
    [images.length - image, 'image grids'],
    [videos.length - video, 'video grids'],
    [audios.length - audio, 'audio feature lengths'],
  ] as const;
  for (const [count, what] of unused) {
    if (count > 0) throw badInput(`tmropePositions: ${count} ${what} left over; the ids hold fewer media blocks than inputs given`);
  }
  return { positionIds: concatPositions(parts), ropeDeltas: stream.ropeDeltas };
}

/**
 * Positions of `count` decoded tokens from cache length `cacheLength` on:
 * c + ropeDeltas in all three streams (§5.2), stream-major [3 · count].
 */
export function decodePositions(cacheLength: number, count: number, ropeDeltas: number): Int32Array {
  if (!isCount(cacheLength, 0)) throw badInput(`decodePositions: cacheLength is ${String(cacheLength)}; expected an integer ≥ 0`);
  if (!isCount(count, 1)) throw badInput(`decodePositions: count is ${String(count)}; expected an integer ≥ 1`);
  if (!Number.isSafeInteger(ropeDeltas)) throw badInput(`decodePositions: ropeDeltas is ${String(ropeDeltas)}; expected an integer (from tmropePositions)`);
  if (cacheLength + ropeDeltas < 0) throw badInput(`decodePositions: cacheLength ${cacheLength} + ropeDeltas ${ropeDeltas} is negative; ropeDeltas belongs to a longer prompt`);
  const out = new Int32Array(3 * count);
  for (let i = 0; i < count; i++) out[i] = out[count + i] = out[2 * count + i] = cacheLength + i + ropeDeltas;
  return out;
}
