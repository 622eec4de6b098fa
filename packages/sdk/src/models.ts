/**
 * Everything a checkpoint folder holds, loaded onto one backend: the Thinker with its audio
 * and vision encoders, the tokenizer and preprocessing settings, and — when the checkpoint
 * speaks — the Talker, token2wav and the speaker dictionary.
 */
import {
  OmniError, readSpeakers, SPEAKERS_FILE, type Backend, type Checkpoint, type CheckpointFiles, type OmniConfig, type Speaker,
} from '@omniweb/core';
import { AudioEncoder } from '@omniweb/audio-encoder';
import { DEFAULT_AUDIO_FEATURES, DEFAULT_IMAGE_PREPROCESS, DEFAULT_VIDEO_PREPROCESS, parsePreprocessorConfig, type PreprocessorConfig } from '@omniweb/media';
import { Talker } from '@omniweb/talker';
import { Thinker } from '@omniweb/thinker';
import { loadTokenizer, type OmniTokenizer } from '@omniweb/tokenizer';
import { VisionEncoder } from '@omniweb/vision-encoder';
import { Token2Wav } from '@omniweb/vocoder';
import type { ModuleName, ModuleWeights } from './check.js';

export interface SpeechModels {
  talker: Talker;
  token2wav: Token2Wav;
  /** Voices by name, in the file's order. */
  speakers: ReadonlyMap<string, Speaker>;
}

export interface OmniModels {
  backend: Backend;
  config: OmniConfig;
  /** Null when the checkpoint has no tokenizer files: prompts then come as ids. */
  tokenizer: OmniTokenizer | null;
  preprocessor: PreprocessorConfig;
  thinker: Thinker;
  audioEncoder: AudioEncoder;
  visionEncoder: VisionEncoder;
  /** Null when the checkpoint has no talker, token2wav or speakers, or disables audio output. */
  speech: SpeechModels | null;
}

async function readBytes(files: CheckpointFiles, name: string): Promise<Uint8Array | null> {
  const source = await files.open(name);
  if (!source) return null;
  try {
    return await source.read(0, source.size);
  } finally {
    await source.close();
  }
}

async function hasFile(files: CheckpointFiles, name: string): Promise<boolean> {
  const source = await files.open(name);
  await source?.close();
  return source !== null;
}

/**
 * Loads every module; `started(module)` is called as each begins (progress reporting).
 * Whatever was loaded is freed again when a later module fails.
 */
export async function loadModels(
  backend: Backend, checkpoint: Checkpoint, config: OmniConfig, formats: ModuleWeights,
  started: (module: ModuleName | 'tokenizer') => void,
): Promise<OmniModels> {
  const files = checkpoint.files;
  if (!files) throw new OmniError('BAD_INPUT', 'Omni.load needs the checkpoint folder (config.json, weights, tokenizer files), not a lone weights file');
  const owned: { dispose(): void }[] = [];
  const keep = <T extends { dispose(): void }>(module: T): T => { owned.push(module); return module; };
  try {
    started('tokenizer');
    const tokenizer = (await hasFile(files, 'tokenizer.json')) || (await hasFile(files, 'vocab.json'))
      ? await loadTokenizer(files, { multimodalTokenIds: config.thinker.tokens })
      : null;
    const preprocessorText = await checkpoint.readText('preprocessor_config.json');
    const preprocessor = preprocessorText === null
      ? { audio: { ...DEFAULT_AUDIO_FEATURES }, image: { ...DEFAULT_IMAGE_PREPROCESS }, video: { ...DEFAULT_VIDEO_PREPROCESS } }
      : parsePreprocessorConfig(parseJson(preprocessorText, 'preprocessor_config.json'));
    started('thinker');
    const thinker = keep(await Thinker.load(backend, checkpoint, config.thinker, { format: formats.thinker }));
    started('audio');
    const audioEncoder = keep(await AudioEncoder.load(backend, checkpoint, config.thinker.audio, { format: formats.audio }));
    started('vision');
    const visionEncoder = keep(await VisionEncoder.load(backend, checkpoint, config.thinker.vision, { format: formats.vision }));
    let speech: SpeechModels | null = null;
    const speakerBytes = config.enableAudioOutput && config.talker && config.token2wav ? await readBytes(files, SPEAKERS_FILE) : null;
    if (speakerBytes && config.talker && config.token2wav) {
      const speakers = readSpeakers(speakerBytes, `${files.location}/${SPEAKERS_FILE}`);
      if (speakers.size === 0) throw new OmniError('BAD_CONFIG', `${files.location}/${SPEAKERS_FILE} holds no voice`);
      started('talker');
      const talker = keep(await Talker.load(thinker, checkpoint, config.talker, { format: formats.talker }));
      started('token2wav');
      // The reference runs token2wav in float32 (fact sheet §1).
      const token2wav = keep(await Token2Wav.load(backend, checkpoint, config.token2wav, { format: 'f32' }));
      speech = { talker, token2wav, speakers };
    }
    return { backend, config, tokenizer, preprocessor, thinker, audioEncoder, visionEncoder, speech };
  } catch (e) {
    for (const module of owned.reverse()) module.dispose();
    throw e;
  }
}

/** Frees every module (the backend stays). */
export function disposeModels(models: OmniModels): void {
  models.speech?.token2wav.dispose();
  models.speech?.talker.dispose();
  models.visionEncoder.dispose();
  models.audioEncoder.dispose();
  models.thinker.dispose();
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new OmniError('BAD_CONFIG', `${file} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
}
