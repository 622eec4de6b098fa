/**
 * Pieces both targets of `pnpm bench:speech` share: a measurement row, scaling timed passes to
 * the whole model, and the Talker's decode loop.
 */
import type { Talker, TalkerConfig } from '@omniweb/talker';
import { totals, type OpProfile, type OpStat } from '../lib/opProfile.js';
import { medianBy, noise, scaleToTower, type PassTiming } from '../lib/towerBench.js';

export interface Result {
  target: string;
  what: string;
  weights: string;
  ran: string;
  ms: number;
  /** Seconds of speech the work stands for (RTF = ms / 1000 / this), or null. */
  audioSeconds: number | null;
  flops: number;
  weightBytes: number;
  ops: Map<string, OpStat>;
  extra?: Record<string, string | number | null>;
  runsMs: number[];
}

/** What a measurement is and how it ran: everything of a Result but the figures. */
export type Label = Pick<Result, 'target' | 'what' | 'weights' | 'ran' | 'audioSeconds'>;

/**
 * Passes that ran `ran` of `of` identical units inside their 'layers' marks, scaled to all of
 * them (scaleToTower), then × `repeat` (a pass standing for one of `repeat` equal pieces of work).
 */
export function fromRuns(label: Label, runs: PassTiming[], ran: number, of: number, repeat = 1): Result {
  const scaled = runs.map((r) => scaleToTower(r, ran, of));
  const med = medianBy(scaled, (s) => s.ms);
  const ops = new Map([...med.allOps].map(([k, s]) => [k, { calls: s.calls * repeat, ms: s.ms * repeat, flops: s.flops * repeat, weightBytes: s.weightBytes * repeat }]));
  const weightBytes = [...ops.values()].reduce((a, s) => a + s.weightBytes, 0);
  return { ...label, ms: med.ms * repeat, flops: med.flops * repeat, weightBytes, ops, runsMs: scaled.map((s) => s.ms * repeat) };
}

export interface TalkerDecode {
  prefillMs: number;
  /** Wall time between consecutive codes after the first. */
  perCodeMs: number[];
  /** FLOPs, weight bytes and ops of the decode phase, per code. */
  flopsPerCode: number;
  weightBytesPerCode: number;
  opsPerCode: Map<string, OpStat>;
  promptLength: number;
}

/**
 * The Talker's decode loop after a prefill of a fixed synthetic prompt: `codes` codes, stop
 * codes suppressed so a random-weight model keeps talking. The profile is recorded untimed
 * unless `timedOps` (ops of a queueing backend return before their work is done).
 */
export async function talkerDecode(
  prof: OpProfile, talker: Talker, config: TalkerConfig, bosToken: number, codes: number, timedOps: boolean,
): Promise<TalkerDecode> {
  const promptLength = 32;
  const width = config.embeddingSize;
  const { codec } = config;
  const stream = talker.start({
    inputIds: Int32Array.from({ length: promptLength }, (_, i) => 1000 + ((i * 7919) % 50000)),
    thinkerHidden: noise(promptLength * width, 7, 1),
    thinkerEmbeddings: noise(promptLength * width, 8, 0.05),
  }, {
    speaker: { bosToken },
    sampling: { temperature: 0 },
    maxNewTokens: codes + 2,
    // Random weights may pick a stop code at any step; the benchmark wants a steady stream.
    inspect: ({ logits }) => { logits[codec.pad] = -Infinity; logits[codec.end] = -Infinity; },
  });
  try {
    for (let j = 0; j < codes + 4; j++) stream.push({ hidden: noise(width, 100 + j, 1), embedding: noise(width, 200 + j, 0.05) });
    stream.endOfText();
    prof.reset();
    prof.setPhase('prefill');
    prof.start({ timed: timedOps });
    const begin = performance.now();
    const at: number[] = [];
    for await (const _code of stream.codes()) {
      at.push(performance.now());
      if (at.length === 1) prof.setPhase('decode');
      if (at.length === codes) break;
    }
    prof.stop();
    const decoded = at.length - 1;
    const decode = totals(prof.stats(), ['decode']);
    return {
      prefillMs: at[0] - begin,
      perCodeMs: at.slice(1).map((t, i) => t - at[i]),
      flopsPerCode: decode.flops / decoded,
      weightBytesPerCode: decode.weightBytes / decoded,
      opsPerCode: new Map([...decode.ops].map(([k, s]) => [k, { calls: s.calls / decoded, ms: s.ms / decoded, flops: s.flops / decoded, weightBytes: s.weightBytes / decoded }])),
      promptLength: promptLength + 2,
    };
  } finally {
    stream.dispose();
  }
}

