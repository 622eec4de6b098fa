/**
 * What a checkpoint folder holds, loaded part by part: the light parts every thread needs
 * (config, tokenizer, preprocessing settings, voices) and the weighted modules, each stage
 * loading only its own onto its backend.
 */
import {
  OmniError, readSpeakers, SPEAKERS_FILE, type Backend, type Checkpoint, type CheckpointFiles, type OmniConfig, type Speaker,
  type WeightFormat, type WeightSource,
} from '@omniweb/core';
import { AudioEncoder } from '@omniweb/audio-encoder';
import { DEFAULT_AUDIO_FEATURES, DEFAULT_IMAGE_PREPROCESS, DEFAULT_VIDEO_PREPROCESS, parsePreprocessorConfig, type PreprocessorConfig } from '@omniweb/media';
import { Talker } from '@omniweb/talker';
import { Thinker } from '@omniweb/thinker';
import { loadTokenizer, type OmniTokenizer } from '@omniweb/tokenizer';
import { VisionEncoder } from '@omniweb/vision-encoder';
import { Token2Wav } from '@omniweb/vocoder';

/** Modules whose matrices can be stored at a chosen precision. */
export type WeightedModule = 'thinker' | 'audio' | 'vision' | 'talker';
export type ModuleName = WeightedModule | 'token2wav';
export type ModuleWeights = Record<WeightedModule, WeightFormat>;

/** The checkpoint's light parts: read by the thread that drives turns. */
export interface CheckpointInfo {
  config: OmniConfig;
  /** Null when the checkpoint has no tokenizer files: prompts then come as ids. */
  tokenizer: OmniTokenizer | null;
  preprocessor: PreprocessorConfig;
  /** Voices by name, in the file's order; null when the checkpoint cannot speak (no talker, token2wav or speakers, or audio output disabled). */
  speakers: ReadonlyMap<string, Speaker> | null;
}

/** Weighted modules on one backend; a stage holds the ones it runs. */
export interface LoadedModules {
  thinker?: Thinker;
  audioEncoder?: AudioEncoder;
  visionEncoder?: VisionEncoder;
  talker?: Talker;
  token2wav?: Token2Wav;
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

function checkpointFiles(checkpoint: Checkpoint): CheckpointFiles {
  if (!checkpoint.files) throw new OmniError('BAD_INPUT', 'Omni.load needs the checkpoint folder (config.json, weights, tokenizer files), not a lone weights file');
  return checkpoint.files;
}

export async function loadCheckpointInfo(checkpoint: Checkpoint, config: OmniConfig): Promise<CheckpointInfo> {
  const files = checkpointFiles(checkpoint);
  const tokenizer = (await hasFile(files, 'tokenizer.json')) || (await hasFile(files, 'vocab.json'))
    ? await loadTokenizer(files, { multimodalTokenIds: config.thinker.tokens })
    : null;
  const preprocessorText = await checkpoint.readText('preprocessor_config.json');
  const preprocessor = preprocessorText === null
    ? { audio: { ...DEFAULT_AUDIO_FEATURES }, image: { ...DEFAULT_IMAGE_PREPROCESS }, video: { ...DEFAULT_VIDEO_PREPROCESS } }
    : parsePreprocessorConfig(parseJson(preprocessorText, 'preprocessor_config.json'));
  let speakers: ReadonlyMap<string, Speaker> | null = null;
  const speakerBytes = config.enableAudioOutput && config.talker && config.token2wav ? await readBytes(files, SPEAKERS_FILE) : null;
  if (speakerBytes) {
    speakers = readSpeakers(speakerBytes, `${files.location}/${SPEAKERS_FILE}`);
    if (speakers.size === 0) throw new OmniError('BAD_CONFIG', `${files.location}/${SPEAKERS_FILE} holds no voice`);
  }
  return { config, tokenizer, preprocessor, speakers };
}

/**
 * The Thinker as the Talker alone needs it: its token table (§7.2: the speaker bos and the
 * TTS text markers are Thinker embeddings), no layers, the head tied to the table. A Talker
 * in its own worker carries this instead of a second copy of the whole Thinker.
 */
function tokenTableThinker(backend: Backend, checkpoint: Checkpoint, config: OmniConfig, format: WeightFormat): Promise<Thinker> {
  const head = 'thinker.lm_head.weight';
  const source: WeightSource = {
    has: (name) => name !== head && checkpoint.has(name),
    info: (name) => checkpoint.info(name),
    readF32: (name) => checkpoint.readF32(name),
    readMatrix: (name, f) => checkpoint.readMatrix(name, f),
  };
  return Thinker.load(backend, source, { ...config.thinker, text: { ...config.thinker.text, layers: 0 } }, { format });
}

/**
 * Loads the named modules in pipeline order; `started(module)` is called as each begins
 * (progress reporting, cancellation). The Talker reads the Thinker's token table: without
 * the Thinker, only that table is loaded for it. Whatever was loaded is freed again when a
 * later module fails.
 */
export async function loadModules(
  backend: Backend, checkpoint: Checkpoint, config: OmniConfig, formats: ModuleWeights, modules: ReadonlySet<ModuleName>,
  started: (module: ModuleName) => void,
): Promise<LoadedModules> {
  checkpointFiles(checkpoint);
  const loaded: LoadedModules = {};
  try {
    if (modules.has('thinker')) {
      started('thinker');
      loaded.thinker = await Thinker.load(backend, checkpoint, config.thinker, { format: formats.thinker });
    }
    if (modules.has('audio')) {
      started('audio');
      loaded.audioEncoder = await AudioEncoder.load(backend, checkpoint, config.thinker.audio, { format: formats.audio });
    }
    if (modules.has('vision')) {
      started('vision');
      loaded.visionEncoder = await VisionEncoder.load(backend, checkpoint, config.thinker.vision, { format: formats.vision });
    }
    if (modules.has('talker')) {
      if (!config.talker) throw new OmniError('INTERNAL', 'the talker was asked for, but the checkpoint has no talker_config');
      started('talker');
      loaded.thinker ??= await tokenTableThinker(backend, checkpoint, config, formats.thinker);
      loaded.talker = await Talker.load(loaded.thinker, checkpoint, config.talker, { format: formats.talker });
    }
    if (modules.has('token2wav')) {
      if (!config.token2wav) throw new OmniError('INTERNAL', 'token2wav was asked for, but the checkpoint has no token2wav_config');
      started('token2wav');
      // The reference runs token2wav in float32 (fact sheet §1).
      loaded.token2wav = await Token2Wav.load(backend, checkpoint, config.token2wav, { format: 'f32' });
    }
    return loaded;
  } catch (e) {
    disposeModules(loaded);
    throw e;
  }
}

/** Frees every module given, dependents first (the backend stays). */
export function disposeModules(modules: LoadedModules): void {
  modules.token2wav?.dispose();
  modules.talker?.dispose();
  modules.visionEncoder?.dispose();
  modules.audioEncoder?.dispose();
  modules.thinker?.dispose();
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new OmniError('BAD_CONFIG', `${file} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
}
