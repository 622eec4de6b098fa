/**
 * Checkpoints that do not match what their config promises fail with a typed error before a
 * model is handed out, and the backend that tried stays usable: a weight stored in a dtype no
 * loader expects, and a config of another model size over these weights.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWasmBackend, loadOmniConfig, openCheckpoint, type Backend } from '@omniweb/core';
import { Thinker, ThinkerSession } from '@omniweb/thinker';
import { ensureEmbeddedModel } from '../src/run.js';
import { failure } from './omniFailure.js';
import { hfJson, SHAPES, shapeConfig } from '../src/synthetic/shapes.js';

/** A copy of `from` with files replaced. */
function variant(scratch: string, from: string, replace: Record<string, Uint8Array | string>): string {
  const dir = mkdtempSync(join(scratch, 'variant-'));
  for (const file of readdirSync(from)) {
    if (Object.hasOwn(replace, file)) writeFileSync(join(dir, file), replace[file]);
    else copyFileSync(join(from, file), join(dir, file));
  }
  return dir;
}

describe('a checkpoint its config does not describe', () => {
  let scratch: string;
  let tiny: string;
  let backend: Backend;

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'omniweb-load-errors-'));
    tiny = await ensureEmbeddedModel(() => {});
    backend = await createWasmBackend({ threads: 1 });
  }, 120_000);

  afterAll(() => {
    backend?.destroy();
    rmSync(scratch, { recursive: true, force: true });
  });

  /** The good checkpoint loads on the same backend and runs a token: nothing of the failed load is in the way. */
  async function expectBackendUsable(): Promise<void> {
    const checkpoint = await openCheckpoint(tiny);
    try {
      const thinker = await Thinker.load(backend, checkpoint, (await loadOmniConfig(checkpoint)).thinker, { format: 'q4' });
      const session = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: 8 } });
      await session.prefill({ ids: [151644, 872] });
      const logits: Float32Array[] = [];
      for await (const event of session.generate({ maxNewTokens: 1, logits: true, stopIds: [] })) logits.push(event.logits!);
      expect(logits).toHaveLength(1);
      expect(logits[0].every(Number.isFinite)).toBe(true);
      session.dispose();
      thinker.dispose();
    } finally {
      await checkpoint.close();
    }
  }

  it('a matrix stored as U16 (a dtype no loader reads): UNSUPPORTED_DTYPE naming it, before the model exists', async () => {
    const name = 'thinker.model.layers.1.mlp.up_proj.weight';
    const bytes = new Uint8Array(readFileSync(join(tiny, 'model.safetensors')));
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
    const entry = `"${name}":{"dtype":"BF16"`;
    expect(header).toContain(entry);
    // Same length, so every offset stays valid: U16 is as wide as BF16 (JSON allows the space).
    bytes.set(new TextEncoder().encode(header.replace(entry, `"${name}":{"dtype":"U16" `)), 8);
    const checkpoint = await openCheckpoint(variant(scratch, tiny, { 'model.safetensors': bytes }));
    try {
      const config = await loadOmniConfig(checkpoint);
      const err = await failure(() => Thinker.load(backend, checkpoint, config.thinker, { format: 'q4' }));
      expect(err.code).toBe('UNSUPPORTED_DTYPE');
      expect(err.message).toContain(`${name} in `);
      expect(err.message).toContain('is U16');
    } finally {
      await checkpoint.close();
    }
    await expectBackendUsable();
  });

  it('the 3B config over the tiny weights: SHAPE_MISMATCH when the config is read, before any weight is', async () => {
    const dir = variant(scratch, tiny, { 'config.json': hfJson(shapeConfig(SHAPES['3b'], 'bfloat16')) });
    const checkpoint = await openCheckpoint(dir, { onProgress: () => { throw new Error('a weight was read'); } });
    try {
      const err = await failure(() => loadOmniConfig(checkpoint));
      expect(err.code).toBe('SHAPE_MISMATCH');
      expect(err.message).toMatch(/config.json and the weights are of different models/);
    } finally {
      await checkpoint.close();
    }
    await expectBackendUsable();
  });
});
