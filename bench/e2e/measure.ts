/** What bench:e2e measures, the same in Node and in a page: hop round trips and turn latencies. */
import { handOver } from '@omniweb/orchestrator';
import type { Omni } from '@omniweb/sdk';
import { median } from '../lib/report.js';

/** The 7B Thinker's width: the rows a token event and the encoders carry. */
export const WIDTH = 3584;

/** Payloads of the pipeline's typical sizes, as Float32Array lengths. */
export const PAYLOADS: { name: string; arrays: number[] }[] = [
  { name: 'empty call', arrays: [] },
  { name: 'token rows (H + E, 2 × 3584)', arrays: [WIDTH, WIDTH] },
  { name: 'PCM chunk (17 280 samples)', arrays: [72 * 240] },
  { name: '2-s audio rows (50 × 3584)', arrays: [50 * WIDTH] },
];

export interface Echo {
  echo(arrays: Float32Array[]): Promise<Float32Array[]>;
}

export interface HopResult {
  payload: string;
  bytes: number;
  roundTripMs: number;
  p95RoundTripMs: number;
  /** Half a round trip: one message one way. */
  hopMs: number;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

/** Round trips of each payload through `echo` (transferred both ways), after 30 warm-up calls. */
export async function measureHops(echo: Echo, reps: number): Promise<HopResult[]> {
  const results: HopResult[] = [];
  for (const payload of PAYLOADS) {
    let arrays: Float32Array[] = payload.arrays.map((n) => new Float32Array(n).fill(0.5));
    const times: number[] = [];
    for (let i = 0; i < reps + 30; i++) {
      const t = performance.now();
      arrays = await echo.echo(handOver(arrays, arrays));
      if (i >= 30) times.push(performance.now() - t);
    }
    const roundTripMs = median(times);
    results.push({
      payload: payload.name, bytes: 4 * payload.arrays.reduce((a, b) => a + b, 0),
      roundTripMs, p95RoundTripMs: percentile(times, 0.95), hopMs: roundTripMs / 2,
    });
  }
  return results;
}

export interface TurnTimes {
  firstTextMs: number;
  firstAudioAfterTextMs: number;
  /** The same with token2wav's euler solver (9 DiT evaluations per chunk where rk4, the reference's, spends 36). */
  firstAudioAfterTextEulerMs: number;
  totalMs: number;
  turns: number;
}

/**
 * One spoken turn (2 s of audio + text, 8 tokens, ≤ 60 codes, greedy) per fresh session, after
 * one warm-up turn: medians; then as many turns with the euler solver, for its first audio.
 */
export async function measureTurns(omni: Omni, reps: number): Promise<TurnTimes> {
  const samples = new Float32Array(32_000).map((_, i) => 0.3 * Math.sin(i / 7) * Math.sin(i / 3000));
  const run = async (solver: 'rk4' | 'euler') => {
    const firstText: number[] = [];
    const textToAudio: number[] = [];
    const total: number[] = [];
    for (let i = 0; i < reps + 1; i++) {
      const session = omni.session({ maxNewTokens: 8, talker: { sampling: { temperature: 0 }, maxNewTokens: 60 }, synthesis: { solver } });
      const { stats } = await session.send({ text: 'What do you hear?', audio: { samples, sampleRate: 16_000 } });
      await session.close();
      if (i === 0) continue;
      if (stats.firstTextMs === null || stats.firstAudioMs === null) throw new Error('a turn gave no text or no audio');
      firstText.push(stats.firstTextMs);
      textToAudio.push(stats.firstAudioMs - stats.firstTextMs);
      total.push(stats.totalMs);
    }
    return { firstTextMs: median(firstText), firstAudioAfterTextMs: median(textToAudio), totalMs: median(total) };
  };
  const reference = await run('rk4');
  const euler = await run('euler');
  return { ...reference, firstAudioAfterTextEulerMs: euler.firstAudioAfterTextMs, turns: reps };
}
