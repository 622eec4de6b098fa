// EnergyVad on synthetic signals (tone bursts, steady and stepped noise, silence, clicks) and on real
// speech synthesised by espeak-ng (scripts/setup.sh installs it).
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeWav, EnergyVad, resample, type SpeechEvent } from '../src/index.js';

const RATE = 16_000;

/** Deterministic uniform noise in [−1, 1]. */
function noise(n: number, amplitude: number, seed = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = amplitude * (s / 2 ** 31 - 1);
  }
  return out;
}

function tone(ms: number, hz: number, amplitude: number): Float32Array {
  const out = new Float32Array((ms * RATE) / 1000);
  for (let i = 0; i < out.length; i++) out[i] = amplitude * Math.sin((2 * Math.PI * hz * i) / RATE);
  return out;
}

function silence(ms: number, amplitude = 3e-4): Float32Array {
  return noise((ms * RATE) / 1000, amplitude, Math.round(ms));
}

function join32(...parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** Feeds the signal in uneven chunks (as a microphone delivers) and notes when each event was reported. */
function run(vad: EnergyVad, pcm: Float32Array, chunk = 357): (SpeechEvent & { reportedMs: number })[] {
  const events: (SpeechEvent & { reportedMs: number })[] = [];
  for (let at = 0; at < pcm.length; at += chunk) {
    const piece = pcm.subarray(at, Math.min(at + chunk, pcm.length));
    for (const e of vad.push(piece)) events.push({ ...e, reportedMs: ((at + piece.length) * 1000) / RATE });
  }
  return events;
}

describe('EnergyVad', () => {
  it('finds a tone burst in quiet room noise: start and end dated at the burst, end reported after the hangover', () => {
    const vad = new EnergyVad();
    const events = run(vad, join32(silence(1000), tone(1500, 220, 0.3), silence(2000)));
    expect(events.map((e) => e.phase)).toEqual(['start', 'end']);
    expect(events[0].atMs).toBeCloseTo(1000, -2);
    expect(Math.abs(events[0].atMs - 1000)).toBeLessThanOrEqual(20);
    expect(Math.abs(events[1].atMs - 2500)).toBeLessThanOrEqual(20);
    // Decided once minSpeechMs of voice was heard, and once the hangover of silence passed.
    expect(events[0].reportedMs - events[0].atMs).toBeGreaterThanOrEqual(vad.minSpeechMs);
    expect(events[0].reportedMs - events[0].atMs).toBeLessThan(vad.minSpeechMs + 60);
    expect(events[1].reportedMs - events[1].atMs).toBeGreaterThanOrEqual(vad.hangoverMs);
    expect(events[1].reportedMs - events[1].atMs).toBeLessThan(vad.hangoverMs + 60);
    expect(vad.speaking).toBe(false);
  });

  it('is silent on silence, on digital zeros and on steady noise of any level', () => {
    expect(run(new EnergyVad(), silence(3000))).toEqual([]);
    expect(run(new EnergyVad(), new Float32Array(3 * RATE))).toEqual([]);
    for (const level of [0.001, 0.05, 0.5]) expect(run(new EnergyVad(), noise(4 * RATE, level, 7))).toEqual([]);
  });

  it('ignores clicks shorter than the minimum speech length, and keeps a pause shorter than the hangover inside one turn', () => {
    expect(run(new EnergyVad(), join32(silence(500), tone(100, 300, 0.5), silence(1000), tone(60, 300, 0.5), silence(1000)))).toEqual([]);
    const events = run(new EnergyVad(), join32(silence(500), tone(800, 200, 0.3), silence(400), tone(800, 200, 0.3), silence(1500)));
    expect(events.map((e) => e.phase)).toEqual(['start', 'end']);
    expect(Math.abs(events[1].atMs - 2500)).toBeLessThanOrEqual(20);
    // A pause longer than the hangover splits the speech in two.
    const split = run(new EnergyVad({ hangoverMs: 300 }), join32(silence(500), tone(800, 200, 0.3), silence(400), tone(800, 200, 0.3), silence(1500)));
    expect(split.map((e) => e.phase)).toEqual(['start', 'end', 'start', 'end']);
  });

  it('learns a noise that starts and stays: at most one spurious turn, which ends, then speech above it is found', () => {
    const vad = new EnergyVad({ floorWindowMs: 2000 });
    const fan = noise(6 * RATE, 0.02, 3);
    const events = run(vad, join32(silence(1000), fan, join32(...[0, 1].map(() => tone(1000, 180, 0.4))).map((x, i) => x + fan[i % fan.length]), fan));
    const starts = events.filter((e) => e.phase === 'start');
    const ends = events.filter((e) => e.phase === 'end');
    expect(ends.length).toBe(starts.length);
    expect(starts.length).toBeLessThanOrEqual(2);
    // The last turn is the tone over the fan, found at its place.
    expect(Math.abs(starts.at(-1)!.atMs - 7000)).toBeLessThanOrEqual(40);
    expect(Math.abs(ends.at(-1)!.atMs - 9000)).toBeLessThanOrEqual(40);
  });

  it('needs more margin for hiss-like frames (high zero-crossing rate) than for voiced ones', () => {
    // Noise bursts 14 dB over a quiet floor pass the level test but not the noisy-frame margin; a tone as loud does.
    const floor = 0.002;
    const burst = noise(RATE, floor * 5, 11);
    expect(run(new EnergyVad(), join32(noise(RATE, floor, 5), burst, noise(2 * RATE, floor, 6)))).toEqual([]);
    const rms = floor * 5 / Math.sqrt(3);
    expect(run(new EnergyVad(), join32(noise(RATE, floor, 5), tone(1000, 200, rms * Math.SQRT2), noise(2 * RATE, floor, 6))).map((e) => e.phase)).toEqual(['start', 'end']);
  });

  it('reset starts time and state over; bad input and options are typed errors', () => {
    const vad = new EnergyVad();
    run(vad, join32(silence(300), tone(600, 200, 0.3)));
    expect(vad.speaking).toBe(true);
    vad.reset();
    expect(vad.speaking).toBe(false);
    const events = run(vad, join32(silence(200), tone(600, 200, 0.3), silence(1000)));
    expect(Math.abs(events[0].atMs - 200)).toBeLessThanOrEqual(20);
    expect(() => vad.push([0, 1] as never)).toThrow(expect.objectContaining({ code: 'BAD_INPUT' }));
    expect(() => vad.push(Float32Array.of(NaN, ...new Float32Array(400)))).toThrow(expect.objectContaining({ code: 'NUMERIC' }));
    expect(() => new EnergyVad({ hangoverMs: -1 })).toThrow(/hangoverMs must be a number/);
    expect(() => new EnergyVad({ onDb: 5, offDb: 8 })).toThrow(/offDb/);
  });

  it('finds the words of real speech (espeak-ng) between stretches of silence, one turn per sentence', () => {
    const dir = mkdtempSync(join(tmpdir(), 'omniweb-vad-'));
    try {
      const say = (text: string) => {
        const file = join(dir, 'say.wav');
        execFileSync('espeak-ng', ['-w', file, '-s', '150', text]);
        const wav = decodeWav(readFileSync(file));
        return resample(wav.samples, wav.sampleRate, RATE);
      };
      const first = say('Hello there. What is the weather like today?');
      const second = say('Thank you, that is all.');
      const pcm = join32(silence(1000), first, silence(2000), second, silence(1500));
      const events = run(new EnergyVad(), pcm);
      expect(events.map((e) => e.phase)).toEqual(['start', 'end', 'start', 'end']);
      const firstEnd = 1000 + (1000 * first.length) / RATE;
      const secondStart = firstEnd + 2000;
      expect(events[0].atMs).toBeGreaterThanOrEqual(980);
      expect(events[0].atMs).toBeLessThan(1300);
      // espeak pads each utterance with a little silence of its own.
      expect(events[1].atMs).toBeLessThanOrEqual(firstEnd + 20);
      expect(events[1].atMs).toBeGreaterThan(firstEnd - 600);
      expect(events[2].atMs).toBeGreaterThanOrEqual(secondStart - 20);
      expect(events[2].atMs).toBeLessThan(secondStart + 300);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
