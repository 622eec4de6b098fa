/** Golden arrays for the media tests, read with the core case reader from the repository's fixture copy. */
import { fileURLToPath } from 'node:url';
import { readCase, type HostArray } from '@omniweb/core';

const goldenDir = fileURLToPath(new URL('../../../fixtures/golden/', import.meta.url));
const cache = new Map<string, Promise<Map<string, HostArray>>>();

export function goldenCase(file: 'audio' | 'image' | 'video'): Promise<Map<string, HostArray>> {
  let entry = cache.get(file);
  if (!entry) {
    entry = readCase(`${goldenDir}${file}.safetensors`);
    cache.set(file, entry);
  }
  return entry;
}

export async function goldenArray(file: 'audio' | 'image' | 'video', name: string): Promise<HostArray> {
  const array = (await goldenCase(file)).get(name);
  if (!array) throw new Error(`golden ${file}.safetensors has no ${name}`);
  return array;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}
