/**
 * One measured load in a fresh Node process (so its peak resident set is this load's):
 * open a checkpoint folder (path or URL, official or converted), load the chosen modules on
 * the wasm backend, optionally decode a few tokens, and print one JSON `LoadReport`.
 * `bench/load/node.ts` and the 3B load test run it as a child process.
 *
 *   tsx bench/load/loadOnce.ts --model <dir|url> --weights q4|q8|f16|f32 [--modules thinker,audio,vision] [--decode N]
 *
 * Host memory: VmHWM (peak resident set) from /proc/self/status. The wasm heap is host memory
 * too, so the figure that the streaming budget bounds is the peak above what stays resident:
 * `peakOverheadBytes` = VmHWM − (resident before loading + device bytes of the loaded weights).
 */
import { createBackend, loadOmniConfig, openCheckpoint, type WeightFormat } from '@omniweb/core';
import { ThinkerSession } from '@omniweb/thinker';
import { checkModules, loadModules, memoryAccount, type LoadModule, type ModuleLoad } from './modules.js';
import { procStatusBytes } from './procStatus.js';

export interface LoadReport {
  model: string;
  weights: WeightFormat;
  converted: boolean;
  modules: ModuleLoad[];
  openMs: number;
  loadMs: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  peakRssBytes: number;
  deviceBytes: number;
  peakOverheadBytes: number;
  /** One tensor's stored bytes + its device bytes + 256 MiB, for the largest tensor loaded. */
  budgetBytes: number;
  decode: { tokens: number[]; ms: number; finiteLogits: boolean } | null;
}

export async function measureLoad(model: string, weights: WeightFormat, modules: readonly LoadModule[], decodeTokens: number): Promise<LoadReport> {
  const backend = await createBackend({ device: 'wasm' });
  const rssBeforeBytes = procStatusBytes('VmRSS');
  const started = performance.now();
  const checkpoint = await openCheckpoint(model);
  const openMs = performance.now() - started;
  try {
    const config = await loadOmniConfig(checkpoint);
    const { loads, thinker } = await loadModules(backend, checkpoint, config, weights, modules);
    const loadMs = performance.now() - started;
    const rssAfterBytes = procStatusBytes('VmRSS');
    const peakRssBytes = procStatusBytes('VmHWM');
    const { deviceBytes, budgetBytes } = memoryAccount(loads);
    let decode: LoadReport['decode'] = null;
    if (decodeTokens > 0) {
      if (!thinker) throw new Error('--decode needs the thinker among --modules');
      const session = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: 64 } });
      const t0 = performance.now();
      // "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n" in Qwen2 ids.
      await session.prefill({ ids: [151644, 872, 198, 9707, 151645, 198, 151644, 77091, 198] });
      const tokens: number[] = [];
      let finiteLogits = true;
      for await (const event of session.generate({ maxNewTokens: decodeTokens, logits: true, stopIds: [] })) {
        tokens.push(event.id);
        if (!event.logits!.every(Number.isFinite)) finiteLogits = false;
      }
      decode = { tokens, ms: performance.now() - t0, finiteLogits };
      session.dispose();
    }
    return {
      model, weights, converted: checkpoint.manifest !== null, modules: loads, openMs, loadMs,
      rssBeforeBytes, rssAfterBytes, peakRssBytes, deviceBytes,
      peakOverheadBytes: peakRssBytes - rssBeforeBytes - deviceBytes,
      budgetBytes,
      decode,
    };
  } finally {
    await checkpoint.close();
    backend.destroy();
  }
}

function flagValue(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const argv = process.argv.slice(2);
  const model = flagValue(argv, 'model');
  if (!model) throw new Error('--model <dir|url> is required');
  const weights = (flagValue(argv, 'weights') ?? 'q4') as WeightFormat;
  const modules = checkModules((flagValue(argv, 'modules') ?? 'thinker').split(','));
  const report = await measureLoad(model, weights, modules, Number(flagValue(argv, 'decode') ?? 0));
  process.stdout.write(`${JSON.stringify(report)}\n`);
}
