// Sampling against hand-worked HF processor semantics and exact expected frequencies.
import { describe, expect, it } from 'vitest';
import { Sampler, TokenHistory, seededRandom } from '../src/index.js';
import { expectOmniError } from './helpers.js';

const row = (values: number[]) => Float32Array.from(values);

/** Frequencies of `draws` picks. */
function histogram(sampler: Sampler, logits: Float32Array, draws: number, history: TokenHistory | null = null): number[] {
  const counts = new Array(logits.length).fill(0);
  for (let i = 0; i < draws; i++) counts[sampler.pick(logits, history)]++;
  return counts.map((c) => c / draws);
}

describe('Sampler', () => {
  it('greedy is the first maximum and leaves the logits untouched', () => {
    const logits = row([0.5, 3, -1, 3, 2]);
    expect(new Sampler(5).pick(logits, null)).toBe(1);
    expect(Array.from(logits)).toEqual([0.5, 3, -1, 3, 2]);
  });

  it('repetition penalty divides positive and multiplies negative logits of seen ids (HF)', () => {
    // Seen {0, 1}, r = 2: [2, -1, 1.5] → [1, -2, 1.5]: id 2 wins; without the history id 0 wins.
    const history = new TokenHistory(3);
    history.addAll([0, 1, 0]);
    expect(Array.from(history.ids)).toEqual([0, 1]);
    const sampler = new Sampler(3, { repetitionPenalty: 2 });
    expect(sampler.pick(row([2, -1, 1.5]), history)).toBe(2);
    expect(sampler.pick(row([2, -1, 1.5]), null)).toBe(0);
    // A negative seen logit is pushed further down: [-1, -0.6] with id 1 seen → [-1, -1.2].
    const h2 = new TokenHistory(2);
    h2.add(1);
    expect(new Sampler(2, { repetitionPenalty: 2 }).pick(row([-1, -0.6]), h2)).toBe(0);
    expect(new Sampler(2).pick(row([-1, -0.6]), h2)).toBe(1);
  });

  it('temperature sampling follows softmax(logits / T)', () => {
    const logits = row([1, 0, -1, 0.5]);
    const T = 0.7;
    const z = Array.from(logits, (l) => Math.exp(l / T));
    const total = z.reduce((a, b) => a + b);
    const freq = histogram(new Sampler(4, { temperature: T, seed: 3 }), logits, 40000);
    freq.forEach((f, i) => expect(Math.abs(f - z[i] / total)).toBeLessThan(0.01));
  });

  it('top-k keeps the k largest (ties at the k-th value too)', () => {
    const freq = histogram(new Sampler(5, { temperature: 1, topK: 2, seed: 5 }), row([1, 3, 2, 3, 0]), 5000);
    // 3 and 3 are the top two: ids 1 and 3 only, equally likely.
    expect(freq[0] + freq[2] + freq[4]).toBe(0);
    expect(Math.abs(freq[1] - 0.5)).toBeLessThan(0.03);
    const ties = histogram(new Sampler(4, { temperature: 1, topK: 1, seed: 5 }), row([2, 2, 1, 0]), 2000);
    expect(ties[0] + ties[1]).toBe(1);
    expect(ties[0]).toBeGreaterThan(0.4);
  });

  it('top-p keeps a token while the mass ranked above it is below p (HF)', () => {
    // probs 0.5, 0.3, 0.15, 0.05; p = 0.7 keeps {0, 1} (mass above: 0, 0.5; then 0.8 ≥ 0.7), renormalised 5 : 3.
    const probs = [0.3, 0.05, 0.5, 0.15];
    const logits = row(probs.map(Math.log));
    for (const topK of [0, 3]) {
      const freq = histogram(new Sampler(4, { temperature: 1, topP: 0.7, topK, seed: 11 }), logits, 20000);
      expect(freq[1] + freq[3]).toBe(0);
      expect(Math.abs(freq[2] - 0.625)).toBeLessThan(0.015);
      expect(Math.abs(freq[0] - 0.375)).toBeLessThan(0.015);
    }
  });

  it('top-p over a large flat vocabulary finds the same nucleus as a full sort', () => {
    const vocab = 5000;
    const random = seededRandom(9);
    const logits = Float32Array.from({ length: vocab }, () => random() * 0.5);
    const p = 0.3;
    // Brute force: sort all, keep while the mass above < p.
    const order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]);
    const max = logits[order[0]];
    const total = order.reduce((s, i) => s + Math.exp(logits[i] - max), 0);
    const nucleus = new Set<number>();
    let above = 0;
    for (const i of order) {
      if (above / total >= p) break;
      nucleus.add(i);
      above += Math.exp(logits[i] - max);
    }
    const sampler = new Sampler(vocab, { temperature: 1, topP: p, seed: 1 });
    const seen = new Set<number>();
    for (let i = 0; i < 3000; i++) seen.add(sampler.pick(logits, null));
    for (const id of seen) expect(nucleus.has(id)).toBe(true);
    // 3000 draws over ~1500 near-equal tokens reach about 1 − e⁻² of them.
    expect(seen.size).toBeGreaterThan(0.75 * nucleus.size);
  });

  it('a seed fixes the stream; another seed gives another', () => {
    const logits = row(Array.from({ length: 50 }, (_, i) => Math.sin(i)));
    const run = (seed: number) => {
      const s = new Sampler(50, { temperature: 1, topP: 0.95, seed });
      return Array.from({ length: 64 }, () => s.pick(logits, null));
    };
    expect(run(42)).toEqual(run(42));
    expect(run(42)).not.toEqual(run(43));
  });

  it('rejects bad options and rows', async () => {
    await expectOmniError(() => new Sampler(4, { temperature: -1 }), 'BAD_INPUT');
    await expectOmniError(() => new Sampler(4, { topK: 1.5 }), 'BAD_INPUT');
    await expectOmniError(() => new Sampler(4, { topP: 0 }), 'BAD_INPUT');
    await expectOmniError(() => new Sampler(4, { topP: 1.2 }), 'BAD_INPUT');
    await expectOmniError(() => new Sampler(4, { repetitionPenalty: 0 }), 'BAD_INPUT');
    await expectOmniError(() => new Sampler(4, { seed: 0.5 }), 'BAD_INPUT');
    await expectOmniError(() => new Sampler(4).pick(row([1, 2]), null), 'BAD_INPUT');
  });
});
