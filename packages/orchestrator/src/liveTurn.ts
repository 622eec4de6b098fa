/**
 * A live turn (ARCHITECTURE "The streaming path"): the user's PCM is cut into log-mel blocks as
 * it arrives and each block is encoded once complete; camera frames (2 per second) make one
 * temporal patch per 2 frames, each encoded once complete; and the Thinker prefills every
 * 2-second chunk as soon as its pieces are encoded — that chunk's video tokens, then its audio
 * tokens (use_audio_in_video, §5.2, §9), or the audio alone without a camera. When the input
 * ends only the last chunk is left to prefill, and the reply follows as for a sent turn.
 *
 * Work goes by priority on the one device: a chunk ready for the Thinker first, then audio
 * blocks, then video patches. Audio waits (the reader stops pulling PCM while blocks are
 * queued) but is never dropped; frames that find the video queue full are dropped, and a
 * patch whose frames were all dropped holds the previous patch's rows (a frozen picture), so
 * the video keeps its time slots and the layout stays the reference's.
 */
import { OmniError, type ThinkerConfig } from '@omniweb/core';
import { MelStream, VideoPatchStream, type MelBlock, type PreprocessorConfig, type RgbImage } from '@omniweb/media';
import { audioInVideoChunks, concatPositions, thinkerTmropeConfig, TmropeStream, type GridThw, type TmropeConfig, type TmropeInputs } from '@omniweb/tmrope';
import type { TurnOutcome, TurnSink } from './driver.js';
import type { ConversationState, PromptBuilder, TurnPrompt } from './prompt.js';
import type { EmbeddingRows, MediaRowSet, PerceptionStage, PrefillChunk, PrefillRows } from './stages.js';

/** A camera frame of a live turn, `seconds` after the turn's first audio sample. */
export interface LiveFrame {
  image: RgbImage;
  seconds: number;
}

/** Frames sampled at the video config's fps on a grid from the turn's start: the frame kept for slot k. */
interface SlotFrame {
  image: RgbImage;
  slot: number;
}

/** What a live turn reads: its audio at the feature rate (16 kHz) and its frames, both ending with the turn. */
export interface LiveTurnInput {
  audio: AsyncIterable<Float32Array>;
  /** Null without a camera. */
  video: AsyncIterable<LiveFrame> | null;
}

/** How far a live turn has come, counted from its start (reported after every block, patch and prefill). */
export interface LiveProgress {
  /** Audio blocks (2 s of mel) encoded; the last, partial block counts once encoded. */
  audioBlocks: number;
  /** Video temporal patches (2 frames, 1 s) ready for the prompt: encoded, or held over when their frames were dropped. */
  videoPatches: number;
  /** Sampled camera frames dropped because the vision encoder was behind (audio is never dropped). */
  droppedVideoFrames: number;
  /** Prompt tokens of this turn already in the Thinker's cache. */
  prefilledTokens: number;
  /** Audio of this turn received so far (ms). */
  audioMs: number;
}

/** The driver's pieces a live turn runs on. */
export interface LiveTurnSteps {
  thinkerConfig: ThinkerConfig;
  preprocessor: PreprocessorConfig;
  perception: PerceptionStage;
  prompts: PromptBuilder;
  stops: ReadonlySet<number>;
  /** The reply is spoken: prefills return their rows for the Talker. */
  speech: boolean;
  state(): Promise<ConversationState>;
  /** The Thinker conversation's `markTurn` and `rewindTurn`. */
  markTurn(): Promise<void>;
  rewindTurn(): Promise<boolean>;
  prefillChunk(chunk: PrefillChunk, signal: AbortSignal): Promise<PrefillRows>;
  reply(prompt: TurnPrompt, rows: PrefillRows, sink: TurnSink, signal: AbortSignal, outcome: TurnOutcome): Promise<void>;
}

/** Mel blocks waiting for the audio encoder before the reader stops pulling PCM. */
const MAX_QUEUED_BLOCKS = 2;
/** Sampled frames waiting for the vision encoder (two patches' worth) before new ones are dropped. */
const MAX_QUEUED_FRAMES = 4;
/** A frame this early still counts for its sampling tick (camera jitter), as `FrameRateSampler` allows. */
const TICK_TOLERANCE_S = 0.01;

/** The parts one after another (at least one part). */
function concat<T extends Float32Array | Int32Array>(parts: readonly T[]): T {
  const out = new (parts[0].constructor as new (length: number) => T)(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

function concatRows(parts: readonly EmbeddingRows[]): EmbeddingRows {
  if (parts.length === 1) return parts[0];
  return { data: concat(parts.map((p) => p.data)), rows: parts.reduce((n, p) => n + p.rows, 0) };
}

/** A signal that something changed (a block, a frame, an input's end). */
class Wakeup {
  #waiting: (() => void) | null = null;
  #pending = false;
  notify(): void {
    this.#pending = true;
    const w = this.#waiting;
    this.#waiting = null;
    w?.();
  }
  async wait(): Promise<void> {
    if (!this.#pending) await new Promise<void>((resolve) => { this.#waiting = resolve; });
    this.#pending = false;
  }
}

/** What the next prefill holds: chunk j's patches, then its audio, then (at the very end) video past the audio. */
interface NextChunk {
  patches: number;
  audio: number;
  trailingPatches: number;
  last: boolean;
}

export class LiveTurn {
  readonly #steps: LiveTurnSteps;
  readonly #input: LiveTurnInput;
  readonly #onProgress: (progress: LiveProgress) => void;
  readonly #tmropeConfig: TmropeConfig;
  readonly #mel: MelStream;
  readonly #patches: VideoPatchStream;
  readonly #wake = new Wakeup();
  readonly #progress: LiveProgress = { audioBlocks: 0, videoPatches: 0, droppedVideoFrames: 0, prefilledTokens: 0, audioMs: 0 };
  /** Set when the turn stops early (abort or failure): the readers stop pulling. */
  #stopped = false;
  /** A reader's failure, thrown by the engine. */
  #failure: unknown = null;
  /** Fixed at the first prefill: the media block interleaves video, or is audio alone. */
  #mode: 'audio' | 'video' | null = null;

  // Audio: mel blocks waiting, encoded rows not yet prefilled, counts.
  readonly #blocks: MelBlock[] = [];
  readonly #spaceWaiters: (() => void)[] = [];
  #audioEnded = false;
  #melFrames = 0;
  readonly #audioRows: EmbeddingRows[] = [];
  #audioTokens = 0;
  #audioFed = 0;

  // Video: frames waiting, frames of the patch being gathered, patches made and not yet prefilled.
  readonly #frames: SlotFrame[] = [];
  #patchFrames: SlotFrame[] = [];
  #videoEnded: boolean;
  #lastSlot = -1;
  readonly #patchRows: EmbeddingRows[] = [];
  #lastPatch: EmbeddingRows | null = null;
  #patchGrid: GridThw | null = null;
  #patchesFed = 0;

  constructor(steps: LiveTurnSteps, input: LiveTurnInput, onProgress: (progress: LiveProgress) => void) {
    this.#steps = steps;
    this.#input = input;
    this.#onProgress = onProgress;
    this.#tmropeConfig = thinkerTmropeConfig(steps.thinkerConfig);
    this.#mel = new MelStream({ config: steps.preprocessor.audio, blockFrames: 2 * steps.thinkerConfig.audio.nWindow });
    this.#patches = new VideoPatchStream(steps.preprocessor.video);
    this.#videoEnded = input.video === null;
  }

  /**
   * Runs the turn to the end of its reply. `signal` interrupts it: the outcome says so. Cut
   * during the reply, the conversation keeps the turn and what was said; cut before the first
   * reply token (the user still being heard), the turn is withdrawn (its prefilled part forgotten).
   */
  async run(sink: TurnSink, signal: AbortSignal): Promise<TurnOutcome> {
    const audio = this.#input.audio[Symbol.asyncIterator]();
    const video = this.#input.video?.[Symbol.asyncIterator]() ?? null;
    const stop = () => {
      this.#stopped = true;
      this.#wake.notify();
      this.#freed();
      // A source waiting for its next item lets go now: what it receives later is not this turn's.
      for (const input of [audio, video]) void Promise.resolve(input?.return?.()).catch(() => undefined);
    };
    signal.addEventListener('abort', stop);
    // Readers end at the input's end, or when the turn stops.
    void this.#readAudio(audio);
    void this.#readVideo(video);
    const outcome: TurnOutcome = { promptTokens: 0, ids: [], codes: 0, interrupted: false, withdrawn: false };
    try {
      await this.#steps.markTurn();
      const { prompt, rows } = await this.#prefillAll(signal);
      outcome.promptTokens = prompt.ids.length;
      await this.#steps.reply(prompt, rows, sink, signal, outcome);
      outcome.interrupted = signal.aborted;
    } catch (e) {
      if (!(e instanceof OmniError && e.code === 'ABORTED' && signal.aborted)) throw e;
      outcome.promptTokens ||= this.#progress.prefilledTokens;
      outcome.interrupted = true;
      if (outcome.ids.length === 0) outcome.withdrawn = await this.#steps.rewindTurn();
    } finally {
      signal.removeEventListener('abort', stop);
      stop();
    }
    return outcome;
  }

  async #readAudio(audio: AsyncIterator<Float32Array>): Promise<void> {
    try {
      for (let step = await audio.next(); !step.done; step = await audio.next()) {
        if (this.#stopped) return;
        const chunk = step.value;
        this.#progress.audioMs += (1000 * chunk.length) / this.#mel.config.sampleRate;
        this.#blocks.push(...this.#mel.push(chunk));
        this.#wake.notify();
        while (this.#blocks.length >= MAX_QUEUED_BLOCKS && !this.#stopped) await new Promise<void>((resolve) => this.#spaceWaiters.push(resolve));
      }
      if (!this.#stopped) this.#blocks.push(...this.#mel.finish());
    } catch (e) {
      this.#failure ??= e;
    } finally {
      this.#audioEnded = true;
      this.#wake.notify();
    }
  }

  async #readVideo(video: AsyncIterator<LiveFrame> | null): Promise<void> {
    if (!video) return;
    try {
      const fps = this.#patches.config.fps;
      for (let step = await video.next(); !step.done; step = await video.next()) {
        if (this.#stopped) return;
        const frame = step.value;
        // Sampling: the first frame at or after each tick of the turn's grid; the others are not wanted.
        const slot = Math.floor((frame.seconds + TICK_TOLERANCE_S) * fps);
        if (slot < 0 || slot <= this.#lastSlot || this.#mode === 'audio') continue;
        this.#lastSlot = slot;
        // The camera does not wait: a frame finding the queue full is dropped (its slot then holds).
        if (this.#frames.length >= MAX_QUEUED_FRAMES) this.#progress.droppedVideoFrames++;
        else this.#frames.push({ image: frame.image, slot });
        this.#wake.notify();
      }
    } catch (e) {
      this.#failure ??= e;
    } finally {
      this.#videoEnded = true;
      this.#wake.notify();
    }
  }

  #freed(): void {
    for (const w of this.#spaceWaiters.splice(0)) w();
  }

  /**
   * The engine: encodes blocks and patches and prefills each chunk once its pieces are in,
   * until the input has ended and every token is fed; returns the whole turn's prompt.
   */
  async #prefillAll(signal: AbortSignal): Promise<{ prompt: TurnPrompt; rows: PrefillRows }> {
    const steps = this.#steps;
    const state = await steps.state();
    const stream = new TmropeStream(this.#tmropeConfig);
    const ids: Int32Array[] = [];
    const positions: Int32Array[] = [];
    const hidden: Float32Array[] = [];
    const embeddings: Float32Array[] = [];
    const { tokens } = this.#tmropeConfig;
    let tail: Int32Array | null = null;

    for (;;) {
      if (this.#failure) throw this.#failure;
      if (signal.aborted) throw new OmniError('ABORTED', 'the live turn was interrupted');
      const next = this.#nextChunk();
      if (!next) {
        if (!(await this.#encodeSomething())) await this.#wake.wait();
        continue;
      }
      const parts: Int32Array[] = [];
      const partPositions: Int32Array[] = [];
      if (!tail) {
        if (this.#audioTokens === 0) throw new OmniError('BAD_INPUT', `the live turn's audio (${this.#progress.audioMs.toFixed(0)} ms) is too short for one audio token (30 ms)`);
        const video = this.#mode === 'video';
        const frame = steps.prompts.liveFrame(video, state, steps.stops);
        tail = frame.tail;
        parts.push(frame.head, video ? Int32Array.of(tokens.visionStart, tokens.audioStart) : Int32Array.of(tokens.audioStart));
        partPositions.push(stream.text(frame.head));
        if (video) {
          const [, gridHeight, gridWidth] = this.#patchGrid!;
          partPositions.push(stream.beginAudioInVideo({ gridHeight, gridWidth, secondPerGrid: this.#secondPerGrid() }));
        } else {
          partPositions.push(stream.beginAudio());
        }
      }
      const media: MediaRowSet = {};
      const videoRows = this.#patchRows.splice(0, next.patches + next.trailingPatches);
      this.#patchesFed += videoRows.length;
      if (videoRows.length > 0) media.video = concatRows(videoRows);
      const videoTokens = (count: number) => count * (videoRows[0]?.rows ?? 0);
      if (next.patches > 0) {
        parts.push(new Int32Array(videoTokens(next.patches)).fill(tokens.video));
        partPositions.push(stream.videoTokens(videoTokens(next.patches)));
      }
      if (next.audio > 0) {
        parts.push(new Int32Array(next.audio).fill(tokens.audio));
        partPositions.push(stream.audioBlock(next.audio));
        media.audio = this.#takeAudio(next.audio);
      }
      if (next.trailingPatches > 0) {
        parts.push(new Int32Array(videoTokens(next.trailingPatches)).fill(tokens.video));
        partPositions.push(stream.videoTokens(videoTokens(next.trailingPatches)));
      }
      if (next.last) {
        const video = this.#mode === 'video';
        parts.push(video ? Int32Array.of(tokens.audioEnd, tokens.visionEnd) : Int32Array.of(tokens.audioEnd), tail);
        partPositions.push(video ? stream.endAudioInVideo() : stream.endAudio(), stream.text(tail));
      }
      const chunkIds = concat(parts);
      const chunkPositions = concatPositions(partPositions);
      for (let i = 0; i < chunkPositions.length; i++) chunkPositions[i] += state.nextPosition;
      const rows = await steps.prefillChunk({ ids: chunkIds, positions: chunkPositions, media, rows: steps.speech }, signal);
      ids.push(chunkIds);
      positions.push(chunkPositions);
      if (rows.hidden) hidden.push(rows.hidden);
      if (rows.embeddings) embeddings.push(rows.embeddings);
      this.#progress.prefilledTokens += chunkIds.length;
      this.#report();
      if (next.last) break;
    }

    const layout: Omit<TmropeInputs, 'inputIds'> = this.#mode === 'video'
      ? { videoGrids: [[this.#patchesFed, this.#patchGrid![1], this.#patchGrid![2]]], secondPerGrids: [this.#secondPerGrid()], audioFeatureLengths: [this.#melFrames], useAudioInVideo: true }
      : { audioFeatureLengths: [this.#melFrames] };
    const all = concat(ids);
    const prompt: TurnPrompt = { ids: all, positions: concatPositions(positions), talkerInputs: { inputIds: all, ...layout } };
    const rows: PrefillRows = { rows: all.length };
    if (hidden.length > 0) rows.hidden = concat(hidden);
    if (embeddings.length > 0) rows.embeddings = concat(embeddings);
    return { prompt, rows };
  }

  #secondPerGrid(): number {
    const { temporalPatchSize, fps } = this.#patches.config;
    return temporalPatchSize / fps;
  }

  /** What can be prefilled now (null: wait for more encoding or input). */
  #nextChunk(): NextChunk | null {
    const audioDone = this.#audioEnded && this.#blocks.length === 0;
    const videoDone = this.#videoEnded && this.#frames.length === 0 && this.#patchFrames.length === 0;
    const audioReady = this.#audioTokens - this.#audioFed;
    const patchesReady = this.#patchRows.length;
    if (this.#mode === null) {
      // The block's kind is fixed by the first prefill: video once a patch exists, audio alone when none will.
      if (this.#input.video === null || (videoDone && patchesReady === 0)) this.#mode = 'audio';
      else if (patchesReady > 0 && audioReady > 0) this.#mode = 'video';
      else if (!(audioDone && audioReady === 0)) return null;
    }
    if (this.#mode !== 'video') {
      // Audio alone: every token as soon as it is encoded.
      if (audioDone) return { patches: 0, audio: audioReady, trailingPatches: 0, last: true };
      return audioReady > 0 ? { patches: 0, audio: audioReady, trailingPatches: 0, last: false } : null;
    }
    // Chunk by chunk: chunk j's video, then its audio (positionIdPerSeconds · secondsPerChunk tokens).
    const perChunk = Math.trunc(this.#tmropeConfig.positionIdPerSeconds * this.#tmropeConfig.secondsPerChunk);
    const chunk = Math.floor(this.#audioFed / perChunk);
    const audio = Math.min(audioReady, perChunk * (chunk + 1) - this.#audioFed);
    const audioComplete = this.#audioFed + audio === perChunk * (chunk + 1) || audioDone;
    // Chunk j's patches are all in once the next patch to come belongs to a later chunk.
    const videoComplete = videoDone || this.#patchChunk(this.#patchesFed + patchesReady) > chunk;
    if (!audioComplete || !videoComplete) return null;
    let patches = 0;
    while (patches < patchesReady && this.#patchChunk(this.#patchesFed + patches) <= chunk) patches++;
    const last = audioDone && audio === audioReady && videoDone;
    let trailingPatches = 0;
    if (last) {
      // Frames after the voice (the detector decides the end a little late) are not the turn's.
      trailingPatches = Math.max(0, Math.min(patchesReady, this.#patchLimit() - this.#patchesFed) - patches);
      const unused = patchesReady - patches - trailingPatches;
      this.#patchRows.length -= unused;
      this.#progress.videoPatches -= unused;
    }
    if (!last && patches === 0 && audio === 0) return null;
    return { patches, audio, trailingPatches, last };
  }

  /** Patches the turn may hold: those that start within its audio, once the audio has ended. */
  #patchLimit(): number {
    return this.#audioEnded ? Math.ceil(this.#progress.audioMs / 1000 / this.#secondPerGrid() - 1e-9) : Infinity;
  }

  /** The interleaving chunk of temporal patch t (`audioInVideoChunks`' video split). */
  #patchChunk(t: number): number {
    const side = 2 * this.#tmropeConfig.spatialMergeSize;
    return audioInVideoChunks([t + 1, side, side], this.#secondPerGrid(), 1, this.#tmropeConfig).length - 1;
  }

  /** One unit of encoding work, audio first; false when there is none. */
  async #encodeSomething(): Promise<boolean> {
    const block = this.#blocks.shift();
    if (!block) return this.#encodePatch();
    this.#freed();
    const rows = await this.#steps.perception.encodeAudioBlock({ features: block.features, frames: block.frames });
    this.#melFrames += block.frames;
    if (rows) {
      this.#audioRows.push(rows);
      this.#audioTokens += rows.rows;
    }
    this.#progress.audioBlocks++;
    this.#report();
    return true;
  }

  /**
   * Gathers the frames of the next temporal patch (`temporalPatchSize` slots) and encodes it
   * once its last slot is in, a later slot arrived, or the video ended. A missing slot repeats
   * a frame of its patch; a patch with none holds the previous patch's rows (or, before the
   * first, takes the next frame to come).
   */
  async #encodePatch(): Promise<boolean> {
    if (this.#mode === 'audio') return false;
    const size = this.#patches.config.temporalPatchSize;
    const index = this.#patchesFed + this.#patchRows.length;
    if (index >= this.#patchLimit()) {
      this.#frames.length = 0;
      this.#patchFrames.length = 0;
      return false;
    }
    const first = index * size;
    while (this.#frames.length > 0 && this.#frames[0].slot < first + size) this.#patchFrames.push(this.#frames.shift()!);
    const complete = this.#patchFrames.length === size || this.#frames.length > 0 || this.#videoEnded;
    if (!complete || (this.#patchFrames.length === 0 && this.#frames.length === 0)) return false;
    let rows: EmbeddingRows;
    if (this.#patchFrames.length === 0 && this.#lastPatch) {
      rows = { data: this.#lastPatch.data.slice(), rows: this.#lastPatch.rows };
    } else {
      const gathered = this.#patchFrames.length > 0 ? this.#patchFrames.splice(0) : [this.#frames[0]];
      let patch = null;
      for (let s = 0; s < size; s++) patch = this.#patches.push((gathered.find((f) => f.slot === first + s) ?? gathered[Math.min(s, gathered.length - 1)]).image);
      rows = await this.#steps.perception.encodeVideoPatch({ pixelValues: patch!.pixelValues, gridThw: patch!.gridThw });
      this.#patchGrid ??= patch!.gridThw;
      // Kept apart: the rows given to a prefill may be moved to a worker.
      this.#lastPatch = { data: rows.data.slice(), rows: rows.rows };
    }
    this.#patchRows.push(rows);
    this.#progress.videoPatches++;
    this.#report();
    return true;
  }

  /** The next `count` audio rows (they may span encoded blocks). */
  #takeAudio(count: number): EmbeddingRows {
    const parts: EmbeddingRows[] = [];
    let left = count;
    while (left > 0) {
      const head = this.#audioRows[0];
      const width = head.data.length / head.rows;
      if (head.rows <= left) {
        parts.push(this.#audioRows.shift()!);
        left -= head.rows;
      } else {
        parts.push({ data: head.data.slice(0, left * width), rows: left });
        this.#audioRows[0] = { data: head.data.slice(left * width), rows: head.rows - left };
        left = 0;
      }
    }
    this.#audioFed += count;
    return concatRows(parts);
  }

  #report(): void {
    this.#onProgress({ ...this.#progress });
  }
}
