/**
 * Live inputs of a session (`session.attach`): a microphone (or PCM chunks) and optionally a
 * camera (or timed frames), cut into live turns. With turn-taking 'vad' a speech detector
 * opens a turn where speech starts (with a little audio before it) and closes it where speech
 * ends (with a little after); with 'manual' a turn runs from the first audio after the
 * previous one until `endTurn()`. Each turn's audio and frames go to the conversation's live
 * turn as they arrive; audio outside turns is dropped once it is too old to be a turn's start.
 */
import { OmniError } from '@omniweb/core';
import { cameraFrames, EnergyVad, microphonePcm, Resampler, type SpeechDetector, type SpeechEvent, type TimedFrame } from '@omniweb/media';
import type { LiveFrame, LiveTurnInput } from '@omniweb/orchestrator';

/** PCM chunks at `sampleRate` (any rate; resampled to 16 kHz), e.g. from a file or a network stream. */
export interface PcmSource {
  sampleRate: number;
  chunks: AsyncIterable<Float32Array> | Iterable<Float32Array>;
}

export interface AttachOptions {
  /** A microphone MediaStream (browser), or PCM chunks with their rate. */
  audio: MediaStream | PcmSource;
  /**
   * A camera MediaStream (browser), or frames whose `timestampSeconds` count from the first
   * audio sample. Frames are sampled at 2 per second; video rides along with the audio's turns.
   */
  video?: MediaStream | AsyncIterable<TimedFrame> | Iterable<TimedFrame>;
  /** 'vad' (default): the detector decides turns, hands-free. 'manual': `session.endTurn()` ends each turn (push-to-talk). */
  turnTaking?: 'vad' | 'manual';
  /** Default `new EnergyVad()`; in 'manual' turn-taking it only reports speech events. */
  detector?: SpeechDetector;
}

export interface Attachment {
  /** Stops reading the inputs (after their next chunk or frame); an open turn is ended as by `endTurn()`. */
  detach(): Promise<void>;
  /** Settles once the audio input has ended (or was detached) and its last turn was handed on. */
  readonly ended: Promise<void>;
}

/** What the session does with an attachment's turns and events. */
export interface LiveHost {
  /** A new live turn: its input arrives on `input` until the turn ends. */
  startTurn(input: LiveTurnInput): void;
  speech(event: SpeechEvent): void;
  /** An input failed outside any turn (audio), or the camera failed (the voice goes on). */
  failed(error: OmniError): void;
  detached(): void;
}

const RATE = 16_000;
/** Audio kept before the detector's speech start (soft onsets), and after its end. */
const PRE_ROLL_MS = 200;
const TAIL_MS = 200;
/** In 'vad' turn-taking, audio this recent is held back until the detector has judged it (so a turn ends at its end + TAIL_MS). */
const HOLD_MS = 500;
/** Audio kept while no turn is open: enough for the detector's onset delay plus the pre-roll. */
const KEEP_MS = 3000;
/** Camera frames read per second from a MediaStream: the model's 2 fps (§4.2); the live turn samples them again on its own grid. */
const CAMERA_FPS = 2;
const ATTACH_KEYS = new Set(['audio', 'video', 'turnTaking', 'detector']);

function badInput(message: string): OmniError {
  return new OmniError('BAD_INPUT', message);
}

function asOmniError(e: unknown): OmniError {
  if (e instanceof OmniError) return e;
  return new OmniError('INTERNAL', `a live input failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

const isMediaStream = (v: unknown): v is MediaStream => typeof MediaStream !== 'undefined' && v instanceof MediaStream;
const isIterable = (v: unknown): v is AsyncIterable<unknown> | Iterable<unknown> =>
  v !== null && typeof v === 'object' && (Symbol.asyncIterator in v || Symbol.iterator in v);

/** Checks `session.attach`'s options (BAD_INPUT), before anything is read. */
export function checkAttachOptions(options: AttachOptions): void {
  if (options === null || typeof options !== 'object') throw badInput('attach takes { audio, video?, turnTaking?, detector? }');
  const unknown = Object.keys(options).filter((k) => !ATTACH_KEYS.has(k));
  if (unknown.length > 0) throw badInput(`attach: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; known: ${[...ATTACH_KEYS].join(', ')}`);
  const { audio, video, turnTaking, detector } = options;
  if (audio === undefined) throw badInput('attach: audio is required (a microphone MediaStream, or { sampleRate, chunks }); live turns follow the voice');
  if (!isMediaStream(audio)) {
    if (audio === null || typeof audio !== 'object' || !isIterable((audio as PcmSource).chunks)) {
      throw badInput('attach: audio must be a MediaStream or { sampleRate, chunks } with chunks an (async) iterable of Float32Array');
    }
    const rate = (audio as PcmSource).sampleRate;
    if (!Number.isInteger(rate) || rate < 1000 || rate > 384_000) throw badInput(`attach: audio.sampleRate must be an integer number of Hz in [1000, 384000], got ${String(rate)}`);
  }
  if (video !== undefined && !isMediaStream(video) && !isIterable(video)) throw badInput('attach: video must be a MediaStream or an (async) iterable of { image, timestampSeconds }');
  if (turnTaking !== undefined && turnTaking !== 'vad' && turnTaking !== 'manual') throw badInput(`attach: turnTaking must be 'vad' or 'manual', got ${JSON.stringify(turnTaking)}`);
  if (detector !== undefined && (detector === null || typeof detector !== 'object' || typeof detector.push !== 'function' || detector.sampleRate !== RATE)) {
    throw badInput(`attach: detector must be a SpeechDetector taking ${RATE} Hz PCM (push, reset, sampleRate ${RATE})`);
  }
}

/** A queue one live turn reads as an async iterable; ends when closed, throws when failed. */
class Channel<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #closed = false;
  #abandoned = false;
  #error: unknown = null;
  #wake: (() => void) | null = null;

  /** The reader stopped before the end (its turn was interrupted or failed); pushes are dropped. */
  get abandoned(): boolean {
    return this.#abandoned;
  }

  push(item: T): void {
    if (this.#closed || this.#abandoned) return;
    this.#items.push(item);
    this.#notify();
  }

  close(error: unknown = null): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#error = error;
    this.#notify();
  }

  /** One reader. Its `return()` takes effect at once, a `next()` waiting for data included. */
  [Symbol.asyncIterator](): AsyncIterator<T, undefined> {
    return {
      next: () => this.#next(),
      return: async () => {
        if (!this.#closed) {
          this.#abandoned = true;
          this.#items.length = 0;
          this.#notify();
        }
        return { done: true, value: undefined };
      },
    };
  }

  async #next(): Promise<IteratorResult<T, undefined>> {
    for (;;) {
      if (this.#abandoned) return { done: true, value: undefined };
      const item = this.#items.shift();
      if (item !== undefined) return { done: false, value: item };
      if (this.#error) throw this.#error;
      if (this.#closed) return { done: true, value: undefined };
      await new Promise<void>((resolve) => { this.#wake = resolve; });
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}

interface OpenTurn {
  audio: Channel<Float32Array>;
  video: Channel<LiveFrame> | null;
  /** Absolute sample where the turn's audio starts, and the first not yet given to it. */
  start: number;
  fed: number;
}

/** PCM of `source` at 16 kHz. */
async function* pcm16k(source: PcmSource): AsyncGenerator<Float32Array> {
  const resampler = source.sampleRate === RATE ? null : new Resampler(source.sampleRate, RATE);
  for await (const chunk of source.chunks) {
    if (!(chunk instanceof Float32Array)) throw badInput(`attach: audio chunks must be Float32Array mono PCM, got ${Object.prototype.toString.call(chunk)}`);
    yield resampler ? resampler.push(chunk) : chunk;
  }
  if (resampler) yield resampler.flush();
}

export class LiveAttachment implements Attachment {
  readonly ended: Promise<void>;
  readonly #host: LiveHost;
  readonly #vad: boolean;
  readonly #detector: SpeechDetector;
  readonly #hasVideo: boolean;
  readonly #stop = new AbortController();
  /** Recent audio (absolute sample index of its first sample), for pre-roll and held-back samples. */
  #ring: Float32Array[] = [];
  #ringStart = 0;
  /** Samples received so far. */
  #head = 0;
  /** Where the last turn's audio ended: the next may not start before it. */
  #lastEnd = 0;
  #turn: OpenTurn | null = null;
  /** Seconds to add to camera timestamps to put them on the audio clock (MediaStream cameras). */
  #cameraOffset: number | null = null;
  #detached = false;

  constructor(options: AttachOptions, host: LiveHost) {
    checkAttachOptions(options);
    this.#host = host;
    this.#vad = (options.turnTaking ?? 'vad') === 'vad';
    this.#detector = options.detector ?? new EnergyVad();
    this.#detector.reset();
    this.#hasVideo = options.video !== undefined;
    const audio = isMediaStream(options.audio) ? microphonePcm(options.audio, { signal: this.#stop.signal }) : pcm16k(options.audio);
    this.ended = this.#pumpAudio(audio);
    if (options.video !== undefined) {
      const camera = options.video;
      void this.#pumpVideo(isMediaStream(camera) ? this.#cameraFrames(camera) : camera);
    }
  }

  /** A turn's input is still arriving. */
  get turnOpen(): boolean {
    return this.#turn !== null;
  }

  /** Ends the open turn with the audio received so far (push-to-talk release); false when none is open. */
  endTurn(): boolean {
    if (!this.#turn) return false;
    this.#close(this.#head);
    return true;
  }

  async detach(): Promise<void> {
    if (this.#detached) return;
    this.#detached = true;
    this.#stop.abort();
    this.endTurn();
    this.#host.detached();
  }

  async #pumpAudio(source: AsyncIterable<Float32Array>): Promise<void> {
    try {
      for await (const chunk of source) {
        if (this.#detached) break;
        this.#receive(chunk);
      }
      this.endTurn();
    } catch (e) {
      const error = asOmniError(e);
      if (this.#turn) this.#close(this.#head, error);
      else this.#host.failed(error);
    } finally {
      await this.detach();
    }
  }

  async #pumpVideo(frames: AsyncIterable<TimedFrame> | Iterable<TimedFrame>): Promise<void> {
    try {
      for await (const frame of frames) {
        if (this.#detached) break;
        if (frame === null || typeof frame !== 'object' || !Number.isFinite(frame.timestampSeconds) || frame.image === undefined) {
          throw badInput('attach: video frames must be { image: RgbImage, timestampSeconds }');
        }
        this.#frame(frame);
      }
    } catch (e) {
      // A failed camera ends the video (reported); the voice goes on.
      this.#turn?.video?.close();
      this.#host.failed(asOmniError(e));
    }
  }

  /** Camera frames with timestamps moved onto the audio clock (the first frame is taken as now). */
  async *#cameraFrames(stream: MediaStream): AsyncGenerator<TimedFrame> {
    const track = stream.getVideoTracks()[0];
    if (!track) throw badInput('attach: the video MediaStream has no video track');
    for await (const frame of cameraFrames(track, { fps: CAMERA_FPS, signal: this.#stop.signal })) {
      this.#cameraOffset ??= this.#head / RATE - frame.timestampSeconds;
      yield { image: frame.image, timestampSeconds: frame.timestampSeconds + this.#cameraOffset };
    }
  }

  #receive(chunk: Float32Array): void {
    // A turn the conversation stopped reading (interrupted, failed) takes no more audio: in
    // 'manual' turn-taking this chunk opens the next turn, with 'vad' the next speech does.
    if (this.#turn?.audio.abandoned) this.#drop();
    this.#ring.push(chunk);
    this.#head += chunk.length;
    const events = this.#detector.push(chunk);
    for (const event of events) {
      this.#host.speech(event);
      if (!this.#vad) continue;
      const at = Math.round((event.atMs * RATE) / 1000);
      if (event.phase === 'start' && !this.#turn) {
        this.#open(Math.max(this.#lastEnd, this.#ringStart, at - (PRE_ROLL_MS * RATE) / 1000));
      } else if (event.phase === 'end' && this.#turn) {
        this.#close(Math.min(this.#head, at + (TAIL_MS * RATE) / 1000));
      }
    }
    if (!this.#vad && !this.#turn) this.#open(this.#head - chunk.length);
    if (this.#turn) this.#feed(this.#vad ? this.#head - (HOLD_MS * RATE) / 1000 : this.#head);
    this.#trim();
  }

  #open(start: number): void {
    const turn: OpenTurn = { audio: new Channel(), video: this.#hasVideo ? new Channel() : null, start, fed: start };
    this.#turn = turn;
    this.#host.startTurn({ audio: turn.audio, video: turn.video });
  }

  /** Forgets the open turn, whose reader is gone. */
  #drop(): void {
    const turn = this.#turn!;
    this.#lastEnd = turn.fed;
    this.#turn = null;
    turn.audio.close();
    turn.video?.close();
  }

  /** Gives the open turn its audio up to sample `end`, then ends it (with `error`, it fails). */
  #close(end: number, error: unknown = null): void {
    const turn = this.#turn!;
    this.#feed(Math.max(end, turn.fed));
    this.#lastEnd = turn.fed;
    this.#turn = null;
    turn.audio.close(error);
    turn.video?.close();
  }

  /** Gives the open turn the ring's samples from where it stands up to absolute sample `upTo`. */
  #feed(upTo: number): void {
    const turn = this.#turn!;
    let at = this.#ringStart;
    for (const chunk of this.#ring) {
      const from = Math.max(turn.fed, at), to = Math.min(upTo, at + chunk.length);
      if (to > from) {
        turn.audio.push(chunk.slice(from - at, to - at));
        turn.fed = to;
      }
      at += chunk.length;
    }
  }

  /** Drops ring chunks no turn can still need. */
  #trim(): void {
    const keepFrom = this.#turn ? this.#turn.fed : this.#head - (KEEP_MS * RATE) / 1000;
    while (this.#ring.length > 1 && this.#ringStart + this.#ring[0].length <= keepFrom) {
      this.#ringStart += this.#ring.shift()!.length;
    }
  }

  /** Sends a frame to the open turn, timed from the turn's first sample (earlier frames are not the turn's). */
  #frame(frame: TimedFrame): void {
    const turn = this.#turn;
    if (!turn?.video) return;
    const seconds = frame.timestampSeconds - turn.start / RATE;
    if (seconds >= 0) turn.video.push({ image: frame.image, seconds });
  }
}
