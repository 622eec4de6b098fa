/**
 * `pnpm bench:e2e` — what running the pipeline in workers costs and gains, in Node on wasm.
 *
 * - Hops: round trips of a comlink call to a worker thread and back, each way carrying a
 *   payload of the pipeline's typical sizes as transferables (moved, not copied), at the 7B
 *   Thinker width (3584): a 2-s audio block's encoder rows (50 rows), one reply token's
 *   hidden + embedding rows (the Talker's input), one streaming PCM chunk (72 mel frames ×
 *   240 = 17 280 samples at 24 kHz), and an empty call. A hop is half a round trip.
 * - Turns: the embedded tiny checkpoint (f32, greedy Thinker and Talker, speech on) in-thread
 *   and in workers; one turn of 2 s of audio + text per fresh session: end of input → first
 *   text token and first text → first audio (the session's TurnStats), and load time.
 *
 * Flags: --hops N (300 round trips per payload) --turns N (5 per pipeline)
 * Prints a table and writes bench/results/e2e-node.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { connectWorker, handOver } from '@omniweb/orchestrator';
import { Omni, type PipelineKind } from '@omniweb/sdk';
import { ensureEmbeddedModel } from '../../packages/cli/src/run.js';
import { formatTable, median, type Row } from '../lib/report.js';
import { parseFlags } from '../lib/towerBench.js';

const flags = parseFlags(process.argv.slice(2));
const hopReps = Number(flags.get('hops') ?? 300);
const turnReps = Number(flags.get('turns') ?? 5);
const here = fileURLToPath(new URL('.', import.meta.url));

const WIDTH = 3584;
const PAYLOADS: { name: string; arrays: number[] }[] = [
  { name: 'empty call', arrays: [] },
  { name: 'token rows (H + E, 2 × 3584)', arrays: [WIDTH, WIDTH] },
  { name: 'PCM chunk (17 280 samples)', arrays: [72 * 240] },
  { name: '2-s audio rows (50 × 3584)', arrays: [50 * WIDTH] },
];

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

interface HopResult { payload: string; bytes: number; roundTripMs: number; p95RoundTripMs: number; hopMs: number }

async function hops(): Promise<HopResult[]> {
  let done = false;
  const worker = await connectWorker<{ echo(a: Float32Array[]): Float32Array[] }>(new URL('./echoWorker.ts', import.meta.url), 'echo', (why) => {
    if (!done) throw new Error(`the echo worker stopped: ${why}`);
  });
  try {
    const results: HopResult[] = [];
    for (const payload of PAYLOADS) {
      let arrays: Float32Array[] = payload.arrays.map((n) => new Float32Array(n).fill(0.5));
      const times: number[] = [];
      for (let i = 0; i < hopReps + 30; i++) {
        const t = performance.now();
        arrays = await worker.remote.echo(handOver(arrays, arrays));
        if (i >= 30) times.push(performance.now() - t);
      }
      const roundTripMs = median(times);
      results.push({
        payload: payload.name, bytes: 4 * payload.arrays.reduce((a, b) => a + b, 0),
        roundTripMs, p95RoundTripMs: percentile(times, 0.95), hopMs: roundTripMs / 2,
      });
    }
    return results;
  } finally {
    done = true;
    worker.terminate();
  }
}

interface TurnResult { pipeline: PipelineKind; loadMs: number; firstTextMs: number; firstAudioAfterTextMs: number; totalMs: number; turns: number }

async function turns(model: string, pipeline: PipelineKind): Promise<TurnResult> {
  const started = performance.now();
  const omni = await Omni.load({ model, device: 'wasm', pipeline });
  const loadMs = performance.now() - started;
  const samples = new Float32Array(32_000).map((_, i) => 0.3 * Math.sin(i / 7) * Math.sin(i / 3000));
  const firstText: number[] = [];
  const textToAudio: number[] = [];
  const total: number[] = [];
  try {
    for (let i = 0; i < turnReps + 1; i++) {
      const session = omni.session({ maxNewTokens: 8, talker: { sampling: { temperature: 0 }, maxNewTokens: 60 } });
      const { stats } = await session.send({ text: 'What do you hear?', audio: { samples, sampleRate: 16_000 } });
      await session.close();
      if (i === 0) continue; // warm-up
      if (stats.firstTextMs === null || stats.firstAudioMs === null) throw new Error(`a ${pipeline} turn gave no text or no audio`);
      firstText.push(stats.firstTextMs);
      textToAudio.push(stats.firstAudioMs - stats.firstTextMs);
      total.push(stats.totalMs);
    }
  } finally {
    await omni.close();
  }
  return { pipeline, loadMs, firstTextMs: median(firstText), firstAudioAfterTextMs: median(textToAudio), totalMs: median(total), turns: turnReps };
}

const hopResults = await hops();
const model = await ensureEmbeddedModel((line) => console.error(line));
const turnResults = [await turns(model, 'in-thread'), await turns(model, 'workers')];

const rows: Row[] = [
  ...hopResults.map((h) => ({
    measure: `hop: ${h.payload}`, 'in-thread ms': null, 'workers ms': h.hopMs, 'p95 ms': h.p95RoundTripMs / 2, note: `${(h.bytes / 1024).toFixed(0)} KiB each way, transferred`,
  })),
  ...(['loadMs', 'firstTextMs', 'firstAudioAfterTextMs', 'totalMs'] as const).map((key) => ({
    measure: { loadMs: 'load (tiny)', firstTextMs: 'end of input → first text', firstAudioAfterTextMs: 'first text → first audio', totalMs: 'turn total' }[key],
    'in-thread ms': turnResults[0][key], 'workers ms': turnResults[1][key], 'p95 ms': null,
    note: key === 'loadMs' ? 'one load' : `median of ${turnReps} turns (2 s audio + text, 8 tokens, ≤ 60 codes)`,
  })),
];
console.log(formatTable(rows));
const worst = Math.max(...hopResults.map((h) => h.hopMs));
console.log(`\nworst median hop ${worst.toFixed(3)} ms (goal ≤ 5 ms)`);
mkdirSync(`${here}../results`, { recursive: true });
writeFileSync(`${here}../results/e2e-node.json`, JSON.stringify({
  date: new Date().toISOString(), node: process.version, hopReps, width: WIDTH, hops: hopResults, turns: turnResults,
}, null, 2));
