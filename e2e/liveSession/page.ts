/**
 * A long hands-free session in the page: the embedded tiny checkpoint on wasm, speech off, a
 * sink-window Thinker cache, and `session.attach({ audio: { sampleRate, chunks } })` fed minutes
 * of espeak-ng utterances between silences faster than real time. Each utterance waits for the
 * answer to the one before (a polite user). Exposed as `globalThis.omniLive`.
 */
import { decodeWav, resample } from '@omniweb/media';
import { Omni, type OmniEvent } from '@omniweb/sdk';

const RATE = 16_000;
/** Chunks of 100 ms, as a microphone worklet would post them. */
const CHUNK = RATE / 10;

export interface LiveRunOptions {
  /** WAV files (URLs) of utterances, spoken in turn. */
  utterances: string[];
  /** Audio to feed in all (seconds of the session's own clock). */
  seconds: number;
  /** Seconds of quiet between utterances. */
  gapSeconds: number;
  /** How much faster than real time the chunks come. */
  speedup: number;
  sink: number;
  window: number;
  maxNewTokens: number;
  /** An answer slower than this is a stall: the run stops with an error. */
  answerTimeoutMs: number;
}

export interface LiveTurn {
  promptTokens: number;
  tokens: number;
  interrupted: boolean;
  /** From the detector's speech end to the turn's end (page clock). */
  answerMs: number;
}

export interface LiveRunResult {
  device: string;
  audioSeconds: number;
  utterances: number;
  speechStarts: number;
  turns: LiveTurn[];
  errors: string[];
  /** usedJSHeapSize after a full GC: after the 10th answer and after the last. */
  heapBytes: [number, number];
}

/** Room noise just above digital silence (deterministic). */
function quiet(samples: number, seed: number): Float32Array {
  const out = new Float32Array(samples);
  let s = seed >>> 0;
  for (let i = 0; i < samples; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = 3e-4 * (s / 2 ** 31 - 1);
  }
  return out;
}

async function fetchSpeech(url: string): Promise<Float32Array> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const wav = decodeWav(new Uint8Array(await response.arrayBuffer()));
  return resample(wav.samples, wav.sampleRate, RATE);
}

/** The heap after a full collection (Chromium with --js-flags=--expose-gc --enable-precise-memory-info). */
function heapAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  const memory = (performance as { memory?: { usedJSHeapSize: number } }).memory;
  if (!gc || !memory) throw new Error('needs gc() and performance.memory: start Chromium with --js-flags=--expose-gc --enable-precise-memory-info');
  gc();
  return memory.usedJSHeapSize;
}

async function run(options: LiveRunOptions): Promise<LiveRunResult> {
  const lines = await Promise.all(options.utterances.map(fetchSpeech));
  const gap = Math.round(options.gapSeconds * RATE);
  // The session's audio, piece by piece: quiet, utterance, quiet, utterance, …, quiet.
  const pieces: { pcm: Float32Array; utterance: number | null }[] = [];
  let samples = 0;
  for (let k = 0; samples < options.seconds * RATE; k++) {
    const line = lines[k % lines.length];
    pieces.push({ pcm: quiet(gap, k + 1), utterance: null }, { pcm: line, utterance: k });
    samples += gap + line.length;
  }
  pieces.push({ pcm: quiet(gap, 0), utterance: null });
  const utterances = pieces.filter((p) => p.utterance !== null).length;

  const omni = await Omni.load({ model: `${location.origin}/ckpt/`, device: 'wasm', speech: false });
  const session = omni.session({ speech: false, maxNewTokens: options.maxNewTokens, cache: { kind: 'sinkWindow', sink: options.sink, window: options.window } });
  const turns: LiveTurn[] = [];
  const errors: string[] = [];
  let speechStarts = 0;
  let speechEndAt = NaN;
  const reading = (async () => {
    for await (const event of session.events() as AsyncIterable<OmniEvent>) {
      if (event.type === 'turn' && event.phase === 'end') {
        turns.push({ promptTokens: event.stats.promptTokens, tokens: event.stats.tokens, interrupted: event.interrupted, answerMs: performance.now() - speechEndAt });
      } else if (event.type === 'error') errors.push(`${event.error.code}: ${event.error.message}`);
      else if (event.type === 'speech') {
        if (event.phase === 'start') speechStarts++;
        else speechEndAt = performance.now();
      }
    }
  })();
  const heapBytes: number[] = [];
  /** Until `n` turns have ended. */
  const answered = async (n: number): Promise<void> => {
    const started = performance.now();
    while (turns.length < n) {
      if (performance.now() - started > options.answerTimeoutMs) throw new Error(`stalled: no answer to utterance ${n} within ${options.answerTimeoutMs} ms (${turns.length} answered, errors: ${errors.join('; ') || 'none'})`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  async function* chunks(): AsyncGenerator<Float32Array> {
    for (const piece of pieces) {
      // Utterance k starts once the k before it are answered; the quiet before it let the detector end the last one.
      if (piece.utterance !== null && piece.utterance > 0) {
        await answered(piece.utterance);
        if (piece.utterance === 10) heapBytes.push(heapAfterGc());
      }
      for (let at = 0; at < piece.pcm.length; at += CHUNK) {
        await new Promise((resolve) => setTimeout(resolve, 100 / options.speedup));
        yield piece.pcm.subarray(at, Math.min(at + CHUNK, piece.pcm.length));
      }
    }
  }
  try {
    const attachment = session.attach({ audio: { sampleRate: RATE, chunks: chunks() } });
    await attachment.ended;
    await answered(utterances);
    heapBytes.push(heapAfterGc());
    return {
      device: omni.device.name, audioSeconds: pieces.reduce((n, p) => n + p.pcm.length, 0) / RATE, utterances, speechStarts,
      turns, errors, heapBytes: heapBytes as [number, number],
    };
  } finally {
    await session.close();
    await reading;
    await omni.close();
  }
}

declare global {
  var omniLive: { run: typeof run };
}
globalThis.omniLive = { run };
