/**
 * The pipeline's stages as the turn driver sees them: small async calls whose arguments and
 * results are host arrays and plain objects, so a stage can run in this thread or behind a
 * worker's message port without the driver knowing which. Pull-based `next()` calls give
 * backpressure (a stage works ahead only as far as it is asked) and cancellation (stop asking,
 * then `stop()`).
 */
import type { Speaker } from '@omniweb/core';
import type { CachePolicy, SamplingOptions } from '@omniweb/thinker';
import type { SynthesisOptions } from '@omniweb/vocoder';
import type { TmropeInputs } from '@omniweb/tmrope';
import type { MediaLayout, SendInput, VisualPatches } from './inputs.js';
import type { ConversationState } from './prompt.js';

/** Encoder output rows of one media item, row-major [rows, hidden]. */
export interface EmbeddingRows {
  data: Float32Array;
  rows: number;
}

export interface MediaRowSet {
  audio?: EmbeddingRows;
  image?: EmbeddingRows;
  video?: EmbeddingRows;
}

/** A turn's media: the sizes the prompt needs and the encoders' rows for its placeholders. */
export interface PerceivedMedia {
  layout: MediaLayout;
  rows: MediaRowSet;
}

/** Preprocessing plus the audio and vision encoders. */
export interface PerceptionStage {
  /** Decodes, preprocesses and encodes a checked input's media (BAD_INPUT on bad media data). */
  perceive(input: SendInput): Promise<PerceivedMedia>;
  /** Live audio: one mel block (at most 2·n_window frames; attention stays inside it) → its rows, null for a tail too short for a token. */
  encodeAudioBlock(block: { features: Float32Array; frames: number }): Promise<EmbeddingRows | null>;
  /** Live video: one temporal patch (`VideoPatchStream`'s pixels, grid [1, h, w]) → its rows. */
  encodeVideoPatch(patch: VisualPatches): Promise<EmbeddingRows>;
}

export interface PrefillChunk {
  ids: Int32Array;
  /** Absolute positions, stream-major [3 · ids.length]. */
  positions: Int32Array;
  media: MediaRowSet;
  /** Also return each row's final hidden state and layer-0 input (the Talker's prompt). */
  rows: boolean;
}

export interface PrefillRows {
  rows: number;
  hidden?: Float32Array;
  embeddings?: Float32Array;
}

export interface ReplyOptions {
  maxNewTokens: number;
  sampling: SamplingOptions;
  /** Each token also carries H and E of the token fed to make it (for the Talker). */
  rows: boolean;
}

export interface ReplyToken {
  id: number;
  hidden?: Float32Array;
  embedding?: Float32Array;
}

/** One conversation in the Thinker (a `ThinkerSession`). */
export interface ThinkerConversation {
  state(): Promise<ConversationState>;
  prefill(chunk: PrefillChunk): Promise<PrefillRows>;
  /** Begins a reply; its tokens come one per `next()`. */
  startReply(options: ReplyOptions): Promise<void>;
  /** The next reply token, or null once the reply is over (stop token or maxNewTokens). */
  next(): Promise<ReplyToken | null>;
  /** Ends the reply where it is: the cache keeps every token fed, the last one emitted stays pending. */
  stopReply(): Promise<void>;
  /** Cuts a running prefill or `next()` short with ABORTED; the cache stays consistent. */
  abort(): Promise<void>;
  /** Remembers where the conversation stands as a turn begins, for `rewindTurn`. */
  markTurn(): Promise<void>;
  /**
   * Forgets everything fed since `markTurn` (a withdrawn or failed turn). False when it cannot:
   * no mark, or a sinkWindow cache that already evicted part of the turn.
   */
  rewindTurn(): Promise<boolean>;
  close(): Promise<void>;
}

/** The Thinker; it holds any number of conversations over one set of weights. */
export interface ThinkerStage {
  open(options: { cache?: CachePolicy }): Promise<ThinkerConversation>;
}

export interface TalkerStart {
  prompt: TmropeInputs;
  /** The prompt's Thinker rows (`PrefillRows` hidden and embeddings). */
  hidden: Float32Array;
  embeddings: Float32Array;
  speaker: Pick<Speaker, 'bosToken'>;
  sampling?: SamplingOptions;
  maxNewTokens?: number;
}

/** One spoken reply in the Talker: reply rows in, codec codes out. */
export interface TalkerReply {
  /** Reply token j's H and E, in order, as the Thinker feeds the token. */
  push(hidden: Float32Array, embedding: Float32Array): Promise<void>;
  endOfText(): Promise<void>;
  /** The next codec code, or null once the Talker has stopped. */
  next(): Promise<number | null>;
  /** Drops the reply; a `next()` in flight rejects with ABORTED. */
  stop(): Promise<void>;
}

export interface TalkerStage {
  start(request: TalkerStart): Promise<TalkerReply>;
}

/** One reply in token2wav (DiT + BigVGAN): codes in, 24 kHz PCM out. */
export interface SpeechReply {
  push(code: number): Promise<void>;
  /** No more codes: the rest of the speech follows. */
  end(): Promise<void>;
  /** The next PCM chunk, or null once every code given is spoken. */
  next(): Promise<Float32Array | null>;
  stop(): Promise<void>;
}

/** token2wav's DiT sampling for a reply (solver, time points, guidance, sway, noise seed); defaults are the reference's. */
export type SpeechSynthesis = Omit<SynthesisOptions, 'noise' | 'signal'>;

export interface SpeechStage {
  start(voice: Pick<Speaker, 'cond' | 'refMel'>, synthesis: SpeechSynthesis): Promise<SpeechReply>;
}

export interface Stages {
  perception: PerceptionStage;
  thinker: ThinkerStage;
  /** Null when the pipeline has no speech. */
  talker: TalkerStage | null;
  speech: SpeechStage | null;
}
