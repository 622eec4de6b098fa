/**
 * A synthetic checkpoint holding only some towers of a real shape (the audio and vision
 * encoders, token2wav, the talker), written with the same layout, seeded weights and config
 * as `omniweb make-checkpoint`, so a benchmark loads real-size towers through our loader
 * without writing the whole 12–22 GB model. Kept under the gitignored .cache/ and reused
 * while its description (shape, seed, parts) is unchanged.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DTYPE_BYTES, fileSink, parseOmniConfig, SINGLE_FILE, SPEAKERS_FILE, streamSafetensors, writeSpeakers,
} from '@omniweb/core';
// The make-checkpoint machinery itself (packages/cli), so the towers are exactly what it writes.
import { checkpointLayout } from '../../packages/cli/src/synthetic/layout.js';
import { tensorChunks } from '../../packages/cli/src/synthetic/random.js';
import { hfJson, SHAPES, shapeConfig, type ShapeName } from '../../packages/cli/src/synthetic/shapes.js';
import { syntheticSpeakers } from '../../packages/cli/src/synthetic/speakers.js';

/** `thinker-stub`: the Thinker's token table, layer 0 and final norm — what a Talker needs of a Thinker besides its layers. */
export type TowerPart = 'audio' | 'vision' | 'token2wav' | 'talker' | 'thinker-stub';

const PREFIXES: Record<TowerPart, string[]> = {
  audio: ['thinker.audio_tower.'],
  vision: ['thinker.visual.'],
  token2wav: ['token2wav.'],
  talker: ['talker.'],
  'thinker-stub': ['thinker.model.embed_tokens.', 'thinker.model.layers.0.', 'thinker.model.norm.'],
};

const MARKER = 'bench-towers.json';

export interface TowerCheckpoint {
  dir: string;
  /** Bytes of weights on disk. */
  bytes: number;
  /** True when it was written by this call (not reused). */
  written: boolean;
  seconds: number;
}

/** The repo's gitignored cache folder. */
export function cacheDir(): string {
  return fileURLToPath(new URL('../../.cache/', import.meta.url));
}

/**
 * Ensures `dir` holds config.json (the full shape's), spk_dict.pt and one model.safetensors with
 * every tensor of `parts` (bf16, as the official checkpoint stores them).
 */
export async function ensureTowerCheckpoint(
  shapeName: ShapeName, parts: readonly TowerPart[], dir: string, log: (line: string) => void = () => {}, seed = 0,
): Promise<TowerCheckpoint> {
  const started = performance.now();
  const wanted = { shape: shapeName, seed, parts: [...parts].sort(), dtype: 'BF16' };
  const markerPath = join(dir, MARKER);
  if (existsSync(markerPath)) {
    const have = JSON.parse(readFileSync(markerPath, 'utf8'));
    if (JSON.stringify(have.description) === JSON.stringify(wanted)) {
      return { dir, bytes: have.bytes, written: false, seconds: 0 };
    }
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const shape = SHAPES[shapeName];
  const configJson = shapeConfig(shape, 'bfloat16');
  const config = parseOmniConfig(configJson);
  const prefixes = parts.flatMap((p) => PREFIXES[p]);
  const plan = checkpointLayout(config).filter((t) => prefixes.some((p) => t.name.startsWith(p)));
  const dtype = 'BF16' as const;
  const bytes = plan.reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype], 0);
  log(`writing ${(bytes / 1e9).toFixed(2)} GB of synthetic ${shapeName} weights (${parts.join(', ')}) to ${dir} …`);
  writeFileSync(join(dir, 'config.json'), hfJson(configJson));
  const sink = await fileSink(join(dir, SINGLE_FILE));
  try {
    await streamSafetensors(sink, plan.map((t) => ({ name: t.name, dtype, shape: t.shape })), (_, i) => tensorChunks(plan[i], dtype, seed), { format: 'pt' });
  } finally {
    await sink.close();
  }
  if (config.token2wav) writeFileSync(join(dir, SPEAKERS_FILE), writeSpeakers(syntheticSpeakers(config.token2wav.dit, seed)));
  writeFileSync(markerPath, JSON.stringify({ description: wanted, bytes }, null, 2));
  const seconds = (performance.now() - started) / 1000;
  log(`  written in ${seconds.toFixed(0)} s`);
  return { dir, bytes, written: true, seconds };
}
