// Per-stage module loading (embedded tiny checkpoint, wasm): a Talker loaded without the Thinker
// gets only the Thinker's token table, not a second copy of its layers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackend, openCheckpoint, type Backend, type Checkpoint } from '@omniweb/core';
import { disposeModules, loadModules, type CheckpointInfo } from '../src/index.js';
import { F32, tinyModel } from './pipelines.js';

let info: CheckpointInfo;
let checkpoint: Checkpoint;
let backend: Backend;
beforeAll(async () => {
  const tiny = await tinyModel();
  info = tiny.info;
  checkpoint = await openCheckpoint(tiny.model);
  backend = await createBackend({ device: 'wasm' });
});
afterAll(async () => {
  backend?.destroy();
  await checkpoint?.close();
});

describe('loadModules', () => {
  it('loads a stage\'s modules only; the Talker alone brings just the Thinker\'s token table', async () => {
    const full = await loadModules(backend, checkpoint, info.config, F32, new Set(['thinker']), () => {});
    const started: string[] = [];
    const talkerOnly = await loadModules(backend, checkpoint, info.config, F32, new Set(['talker']), (m) => started.push(m));
    try {
      expect(started).toEqual(['talker']);
      expect(talkerOnly.audioEncoder).toBeUndefined();
      expect(talkerOnly.token2wav).toBeUndefined();
      const table = talkerOnly.thinker!;
      expect(full.thinker!.weights.layers.length).toBe(info.config.thinker.text.layers);
      expect(table.weights.layers).toHaveLength(0);
      expect(table.weights.lmHead).toBe(table.weights.embedTokens);
      const { rows, cols, format } = full.thinker!.weights.embedTokens;
      expect(table.weights.embedTokens).toMatchObject({ rows, cols, format });
      expect(talkerOnly.talker!.thinker).toBe(table);
    } finally {
      disposeModules(talkerOnly);
      disposeModules(full);
    }
  });
});
