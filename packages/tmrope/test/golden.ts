// Golden arrays and the tiny checkpoint's config, read with the core safetensors reader.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseOmniConfigText, readCase, type HostArray, type OmniConfig } from '@omniweb/core';
import type { GridThw } from '../src/index.js';

export const GOLDEN = fileURLToPath(new URL('../../../fixtures/golden/', import.meta.url));

export async function goldenCase(name: string): Promise<Map<string, HostArray>> {
  return readCase(`${GOLDEN}${name}.safetensors`);
}

export async function tinyConfig(): Promise<OmniConfig> {
  return parseOmniConfigText(await readFile(`${GOLDEN}tiny-omni/config.json`, 'utf8'));
}

export function array(c: Map<string, HostArray>, name: string): HostArray {
  const a = c.get(name);
  if (!a) throw new Error(`golden array ${name} is missing`);
  return a;
}

export const ints = (c: Map<string, HostArray>, name: string) => Array.from(array(c, name).data);
export const grid = (c: Map<string, HostArray>, name: string): GridThw => {
  const [t, h, w] = array(c, name).data;
  return [t, h, w];
};

/** The media of the golden prompts: p1 = audio + image, p2 = video with its soundtrack (golden README). */
export async function goldenMedia() {
  const [audio, image, video] = await Promise.all([goldenCase('audio'), goldenCase('image'), goldenCase('video')]);
  const mask = array(audio, 'feature_attention_mask').data;
  return {
    featureLength: Array.from(mask).reduce((s, v) => s + v, 0),
    imageGrid: grid(image, 'image_grid_thw'),
    videoGrid: grid(video, 'video_grid_thw'),
    secondPerGrid: array(video, 'second_per_grid_ts').data[0],
    rotaryPosEmb: array(image, 'rotary_pos_emb'),
  };
}
