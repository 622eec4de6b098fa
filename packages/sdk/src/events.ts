/**
 * What a session reports, and the queue that carries it to `session.events()`.
 */
import { OmniError } from '@omniweb/core';
import type { LiveProgress } from '@omniweb/orchestrator';

/** Timings and counts of one turn; times are milliseconds from the moment the turn began running. */
export interface TurnStats {
  /** Until the first text event; null when the reply had no text. */
  firstTextMs: number | null;
  /** Until the first audio event; null without speech. */
  firstAudioMs: number | null;
  /** Prompt tokens fed to the Thinker this turn (placeholders expanded). */
  promptTokens: number;
  /** Tokens the Thinker generated, its stop token included. */
  tokens: number;
  /** Codec codes the Talker produced (each becomes `samplesPerCode` samples of speech). */
  codes: number;
  /** Until the turn ended. */
  totalMs: number;
}

export type OmniEvent =
  /** One reply token and the text it completes (empty while a character is split across tokens). */
  | { type: 'text'; text: string; id: number }
  /** A piece of the spoken reply, mono PCM in [−1, 1]. */
  | { type: 'audio'; pcm: Float32Array; sampleRate: number }
  | { type: 'turn'; phase: 'start'; turn: number }
  /**
   * `interrupted`: `interrupt()` or `close()` cut the turn short; the conversation keeps what was
   * said. `withdrawn`: it was cut before the first reply token, and the turn was taken back.
   */
  | { type: 'turn'; phase: 'end'; turn: number; stats: TurnStats; interrupted: boolean; withdrawn: boolean }
  /** A send that failed; the session stays usable and the conversation is as it was before it. */
  | { type: 'error'; error: OmniError }
  /** The speech detector of an attached input heard speech begin or end (`atMs`: audio time since attach). */
  | { type: 'speech'; phase: 'start' | 'end'; atMs: number }
  /** A live turn encoded or prefilled another piece of its input, while the user may still be speaking. */
  | ({ type: 'stats'; turn: number } & LiveProgress);

/**
 * Events in order, kept until read. One reader at a time: `read()` throws while another
 * iteration is active. After `end()` a reader drains what is queued and then stops.
 */
export class EventQueue {
  readonly #queue: OmniEvent[] = [];
  #wake: (() => void) | null = null;
  #ended = false;
  #reading = false;

  push(event: OmniEvent): void {
    if (this.#ended) return;
    this.#queue.push(event);
    this.#notify();
  }

  end(): void {
    this.#ended = true;
    this.#notify();
  }

  async *read(): AsyncGenerator<OmniEvent, void, undefined> {
    if (this.#reading) throw new OmniError('BAD_INPUT', 'session.events() is already being iterated; one reader at a time (break out of the other loop first)');
    this.#reading = true;
    try {
      for (;;) {
        const next = this.#queue.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        if (this.#ended) return;
        await new Promise<void>((resolve) => { this.#wake = resolve; });
      }
    } finally {
      this.#reading = false;
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}
