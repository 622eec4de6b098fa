/**
 * One turn's input as a caller gives it (text, audio, image, video, or prompt ids) → the
 * model's features, by the media package's preprocessing (fact sheet §3.1, §4.1, §4.2).
 * Everything here runs before the Thinker is touched, so a bad input leaves the
 * conversation as it was.
 */
import { OmniError } from '@omniweb/core';
import {
  decodeImage, decodeWav, framesSource, logMel, parseY4m, processImage, resample, videoFromSource,
  type FrameSource, type PreprocessorConfig, type RgbImage,
} from '@omniweb/media';
import { audioTokenCount, type GridThw, type TmropeInputs } from '@omniweb/tmrope';

/** Mono PCM at any rate; it is resampled to the feature rate (16 kHz). */
export interface AudioSamples {
  samples: Float32Array;
  sampleRate: number;
}

/** Frames held in memory and the rate they were taken at. */
export interface VideoFrames {
  frames: readonly RgbImage[];
  fps: number;
}

export interface SendInput {
  text?: string;
  /** PCM samples, or the bytes of a WAV file. */
  audio?: AudioSamples | Uint8Array | ArrayBuffer;
  /** Decoded RGB pixels, or the bytes of a PNG/JPEG file (a Blob in browsers). */
  image?: RgbImage | Uint8Array | ArrayBuffer | Blob;
  /** Frames with their rate, or the bytes of a Y4M file; sampled at 2 fps. */
  video?: VideoFrames | Uint8Array | ArrayBuffer;
  /**
   * The prompt as token ids instead of `text` and the chat template: one placeholder per media
   * item given (`<|audio_bos|><|AUDIO|><|audio_eos|>`, …), expanded here. For checkpoints
   * without tokenizer files and for replaying recorded prompts.
   */
  ids?: Int32Array | readonly number[];
}

const INPUT_KEYS = new Set(['text', 'audio', 'image', 'video', 'ids']);

/** Log-mel of the audio clip, as the audio encoder takes it. */
export interface AudioFeatures {
  features: Float32Array;
  frames: number;
  melBins: number;
}

export interface VisualPatches {
  pixelValues: Float32Array;
  gridThw: GridThw;
}

/** The media sizes placeholder expansion and TMRoPE need (one entry per item given). */
export type MediaLayout = Omit<TmropeInputs, 'inputIds'>;

/** A turn's media, ready for the encoders, and its layout. */
export interface TurnMedia {
  audio: AudioFeatures | null;
  image: VisualPatches | null;
  video: (VisualPatches & { secondPerGrid: number }) | null;
  layout: MediaLayout;
}

function badInput(message: string): OmniError {
  return new OmniError('BAD_INPUT', message);
}

const isBytes = (v: unknown): v is Uint8Array | ArrayBuffer => v instanceof Uint8Array || v instanceof ArrayBuffer;
const asBytes = (v: Uint8Array | ArrayBuffer): Uint8Array => (v instanceof Uint8Array ? v : new Uint8Array(v));

/** Checks the shape of a send input (not yet its media contents). */
export function checkSendInput(input: SendInput): void {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw badInput('send takes an object { text?, audio?, image?, video?, ids? }');
  }
  const unknown = Object.keys(input).filter((k) => !INPUT_KEYS.has(k));
  if (unknown.length > 0) throw badInput(`send: unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; a turn takes text, audio, image, video or ids`);
  const { text, audio, image, video, ids } = input;
  if (text !== undefined && typeof text !== 'string') throw badInput(`send: text must be a string, got ${typeof text}`);
  if (ids !== undefined) {
    if (!(ids instanceof Int32Array) && !Array.isArray(ids)) throw badInput('send: ids must be an Int32Array or an array of token ids');
    if (ids.length === 0) throw badInput('send: ids is empty');
    if (text !== undefined) throw badInput('send: give either text (rendered by the chat template) or ids (the prompt itself), not both');
  }
  if (text === undefined && ids === undefined && audio === undefined && image === undefined && video === undefined) {
    throw badInput('send: nothing to say; give text, audio, image, video or ids');
  }
  if (text === '' && audio === undefined && image === undefined && video === undefined) throw badInput('send: the text is empty and no media was given');
}

async function audioFeatures(audio: SendInput['audio'], config: PreprocessorConfig): Promise<AudioFeatures> {
  let pcm: AudioSamples;
  if (isBytes(audio)) {
    const wav = decodeWav(asBytes(audio));
    pcm = { samples: wav.samples, sampleRate: wav.sampleRate };
  } else if (audio !== null && typeof audio === 'object' && 'samples' in audio) {
    pcm = audio;
  } else {
    throw badInput('send: audio must be { samples: Float32Array, sampleRate } or the bytes of a WAV file');
  }
  if (!(pcm.samples instanceof Float32Array)) throw badInput('send: audio.samples must be a Float32Array of mono PCM');
  if (!Number.isFinite(pcm.sampleRate) || pcm.sampleRate <= 0) throw badInput(`send: audio.sampleRate ${String(pcm.sampleRate)} must be a positive number (Hz)`);
  const rate = config.audio.sampleRate;
  const samples = pcm.sampleRate === rate ? pcm.samples : resample(pcm.samples, pcm.sampleRate, rate);
  // Only the valid frames: padding to the clip length changes none of them (fact sheet §3.1).
  const mel = logMel(samples, { config: config.audio });
  if (audioTokenCount(mel.frames) === 0) {
    throw badInput(`send: the audio lasts ${(1000 * samples.length / rate).toFixed(1)} ms, ${mel.frames} mel frame(s); the audio encoder needs at least 3 (30 ms) to give a token`);
  }
  return { features: mel.features, frames: mel.frames, melBins: mel.melBins };
}

async function imagePatches(image: SendInput['image'], config: PreprocessorConfig): Promise<VisualPatches> {
  const isBlob = typeof Blob !== 'undefined' && image instanceof Blob;
  const rgb = isBytes(image) || isBlob ? await decodeImage(image as Uint8Array | ArrayBuffer | Blob) : (image as RgbImage);
  const processed = processImage(rgb, config.image);
  return { pixelValues: processed.pixelValues, gridThw: processed.gridThw };
}

function videoPatches(video: SendInput['video'], config: PreprocessorConfig): VisualPatches & { secondPerGrid: number } {
  let source: FrameSource;
  if (isBytes(video)) source = parseY4m(asBytes(video));
  else if (video !== null && typeof video === 'object' && 'frames' in video) source = framesSource(video.frames, video.fps);
  else throw badInput('send: video must be { frames: RgbImage[], fps } or the bytes of a Y4M file');
  const sampled = videoFromSource(source, config.video);
  return { pixelValues: sampled.pixelValues, gridThw: sampled.gridThw, secondPerGrid: sampled.secondPerGrid };
}

/** Decodes and preprocesses the turn's media (BAD_INPUT and the media package's errors on bad data). */
export async function prepareMedia(input: SendInput, config: PreprocessorConfig): Promise<TurnMedia> {
  const audio = input.audio === undefined ? null : await audioFeatures(input.audio, config);
  const image = input.image === undefined ? null : await imagePatches(input.image, config);
  const video = input.video === undefined ? null : videoPatches(input.video, config);
  return {
    audio,
    image,
    video,
    layout: {
      audioFeatureLengths: audio ? [audio.frames] : [],
      imageGrids: image ? [image.gridThw] : [],
      videoGrids: video ? [video.gridThw] : [],
      secondPerGrids: video ? [video.secondPerGrid] : [],
    },
  };
}
