import { describe, expect, it } from 'vitest';
import { CORPUS, expectError, omniTokenizer } from './files.js';

/** A seeded generator (mulberry32) for reproducible id sequences. */
function seeded(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) % n;
  };
}

const isWellFormed = (s: string) => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);

describe('StreamingDecoder', () => {
  it('gives one delta per token that never splits a character, and the deltas join to the text', () => {
    const tok = omniTokenizer();
    let held = 0;
    for (const text of CORPUS) {
      const ids = tok.encode(text);
      const decoder = tok.streamingDecoder();
      const deltas = Array.from(ids, (id) => decoder.push(id));
      const tail = decoder.flush();
      expect(tail).toBe('');
      expect(deltas.join(''), JSON.stringify(text)).toBe(text.normalize('NFC'));
      for (const d of deltas) {
        expect(isWellFormed(d)).toBe(true);
        expect(d).not.toContain('\uFFFD');
      }
      held += deltas.filter((d) => d === '').length;
    }
    // Emoji and rare characters span several byte tokens: their first tokens give no text yet.
    expect(held).toBeGreaterThan(10);
  });

  it('equals decode on arbitrary id sequences: broken UTF-8, special tokens, ids without a token', () => {
    const tok = omniTokenizer();
    const pool = [
      ...new Set([
        ...CORPUS.flatMap((t) => Array.from(tok.encode(t))),
        151859, 151870, 151872, 151643, 151644, 151645, 151646, 151655,
      ]),
    ];
    let broken = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const rand = seeded(seed);
      const ids = Array.from({ length: 1 + rand(12) }, () => pool[rand(pool.length)]);
      for (const skipSpecialTokens of [false, true]) {
        const decoder = tok.streamingDecoder({ skipSpecialTokens });
        const streamed = ids.map((id) => decoder.push(id)).join('') + decoder.flush();
        const whole = tok.decode(ids, { skipSpecialTokens });
        expect(streamed, `seed ${seed} ids ${ids.join(',')}`).toBe(whole);
        if (whole.includes('\uFFFD')) broken++;
      }
    }
    expect(broken).toBeGreaterThan(20);
  });

  it('flush ends an unfinished character with U+FFFD', () => {
    const tok = omniTokenizer();
    // A character the vocabulary holds only as several byte tokens.
    const ch = [...'𝄞\u{10FFFF}\u{E0041}'].find((c) => tok.encode(c).length > 1)!;
    const ids = Array.from(tok.encode(ch));
    const decoder = tok.streamingDecoder();
    expect(decoder.push(ids[0])).toBe('');
    expect(decoder.flush()).toBe('\uFFFD');
    // After a flush the decoder starts clean.
    expect(ids.map((id) => decoder.push(id)).join('') + decoder.flush()).toBe(ch);
  });

  it('refuses ids that are not token ids', () => {
    const decoder = omniTokenizer().streamingDecoder();
    expectError(() => decoder.push(-1), 'BAD_INPUT', /id is -1/);
    expectError(() => decoder.push(Number.NaN), 'BAD_INPUT', /id is NaN/);
  });
});
