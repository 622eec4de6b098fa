/**
 * Decode steps of several loaded Thinkers in alternation — one step of each in turn — so
 * that the load other processes put on a shared machine falls on all of them alike: the
 * ratio of their median steps is a fair before/after even when the absolute rates drift.
 */
import { ThinkerSession, type Thinker } from '@omniweb/thinker';
import { median } from '../lib/report.js';
import { fillCache, promptIds } from './suite.js';

export interface PairedDecode {
  label: string;
  context: number;
  tokens: number;
  /** Median step, and its rate. */
  ms: number;
  tokPerS: number;
}

export async function pairedDecode(
  entries: readonly { label: string; thinker: Thinker }[], context: number, tokens: number, warmupTokens: number,
  now: () => number = () => performance.now(),
): Promise<PairedDecode[]> {
  const total = warmupTokens + tokens;
  const sessions = entries.map(({ thinker }) => new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: context + total + 2 } }));
  try {
    const streams = [];
    for (const [i, session] of sessions.entries()) {
      if (context > 0) await fillCache(entries[i].thinker, session, context);
      await session.prefill({ ids: promptIds(1, context + 1) });
      const stream = session.generate({ maxNewTokens: total + 1, stopIds: [] })[Symbol.asyncIterator]();
      // The first event is the prefill's token: no forward pass.
      await stream.next();
      streams.push(stream);
    }
    const steps: number[][] = entries.map(() => []);
    for (let step = 0; step < total; step++) {
      for (const [i, stream] of streams.entries()) {
        const t0 = now();
        const { done } = await stream.next();
        if (done) throw new Error(`${entries[i].label}: the session stopped after ${step} steps`);
        if (step >= warmupTokens) steps[i].push(now() - t0);
      }
    }
    return entries.map(({ label }, i) => {
      const ms = median(steps[i]);
      return { label, context, tokens, ms, tokPerS: 1000 / ms };
    });
  } finally {
    for (const s of sessions) s.dispose();
  }
}
