// Shared test plumbing: a tiny synthetic checkpoint with tokenizer files and voices, and event collection.
import { expect } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OmniErrorCode } from '@omniweb/core';
// The synthetic checkpoint writer lives with the CLI's make-checkpoint; tests borrow it.
import { DEFAULT_SHARD_BYTES, makeCheckpoint } from '../../cli/src/makeCheckpoint.js';
import type { OmniEvent, OmniSession } from '../src/index.js';

export const GOLDEN = fileURLToPath(new URL('../../../fixtures/golden/', import.meta.url));

/** Writes the tiny checkpoint (random weights, official layout, tokenizer, spk_dict.pt) into a temp folder. */
export async function makeTiny(): Promise<{ dir: string; remove: () => void }> {
  const root = mkdtempSync(join(tmpdir(), 'omniweb-sdk-'));
  const dir = join(root, 'tiny-omni');
  await makeCheckpoint({ shape: 'tiny', out: dir, seed: 0, dtype: 'bf16', shardBytes: DEFAULT_SHARD_BYTES });
  return { dir, remove: () => rmSync(root, { recursive: true, force: true }) };
}

/** Reads a session's events in the background; `turn(n)` gives the events of turn n once it has ended. */
export function collect(session: OmniSession, onEvent: (event: OmniEvent) => void = () => {}) {
  const events: OmniEvent[] = [];
  const done = (async () => {
    for await (const event of session.events()) {
      events.push(event);
      onEvent(event);
    }
  })();
  return {
    events,
    done,
    /** Events from turn n's start to its end, inclusive. */
    turn(n: number): OmniEvent[] {
      const start = events.findIndex((e) => e.type === 'turn' && e.phase === 'start' && e.turn === n);
      const end = events.findIndex((e) => e.type === 'turn' && e.phase === 'end' && e.turn === n);
      expect(start, `turn ${n} started`).toBeGreaterThanOrEqual(0);
      expect(end, `turn ${n} ended`).toBeGreaterThan(start);
      return events.slice(start, end + 1);
    },
  };
}

export const code = (c: OmniErrorCode) => expect.objectContaining({ name: 'OmniError', code: c });

/** Awaits a rejection and checks its OmniError code and message. */
export async function rejects(promise: Promise<unknown>, c: OmniErrorCode, message: RegExp): Promise<void> {
  await expect(promise).rejects.toThrow(message);
  await expect(promise).rejects.toEqual(code(c));
}

export function throws(f: () => unknown, c: OmniErrorCode, message: RegExp): void {
  expect(f).toThrow(message);
  expect(f).toThrow(code(c));
}
