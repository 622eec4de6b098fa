/**
 * The model-cache page: opens a converted checkpoint folder by URL through the browser's
 * model cache (OPFS here), loads its Thinker on the wasm backend and runs one token, so the
 * test can check what the second visit fetched, and says how many bytes the weights take on
 * the device and the streaming budget (bench/load/modules.ts), so it can check the renderer's
 * peak memory. Exposed as `globalThis.omniCache`.
 */
import { createBackend, defaultModelCache, loadOmniConfig, openCheckpoint, type LoadWarning } from '@omniweb/core';
import { ThinkerSession } from '@omniweb/thinker';
import { loadModules, memoryAccount } from '../../bench/load/modules.js';

export interface PageLoad {
  cacheKind: string;
  warnings: LoadWarning[];
  weights: string;
  firstId: number;
  finiteLogits: boolean;
  deviceBytes: number;
  budgetBytes: number;
}

async function load(url: string): Promise<PageLoad> {
  const cache = await defaultModelCache();
  const warnings: LoadWarning[] = [];
  const checkpoint = await openCheckpoint(url, { cache, onWarning: (w) => warnings.push(w) });
  const backend = await createBackend({ device: 'wasm' });
  try {
    const config = await loadOmniConfig(checkpoint);
    const weights = checkpoint.manifest!.weights;
    const { loads, thinker } = await loadModules(backend, checkpoint, config, weights, ['thinker']);
    const session = new ThinkerSession(thinker!, { cache: { kind: 'plain', capacity: 8 } });
    await session.prefill({ ids: [151644, 872, 198] });
    const events = [];
    for await (const event of session.generate({ maxNewTokens: 1, logits: true, stopIds: [] })) events.push(event);
    return {
      cacheKind: cache.kind, warnings, weights, firstId: events[0].id, finiteLogits: events[0].logits!.every(Number.isFinite),
      ...memoryAccount(loads),
    };
  } finally {
    await checkpoint.close();
    backend.destroy();
  }
}

declare global {
  var omniCache: { load: typeof load };
}
globalThis.omniCache = { load };
