/**
 * Page settings from the query string, so a link (or a test) can pick the device, the model
 * and how long replies may run: `?device=wasm&maxTokens=16&maxCodes=200&solver=euler&autostart=1`.
 */
import type { DeviceChoice, WeightFormat } from '@omniweb/core';
import { DIT_SOLVERS, type DitSolver, type PipelineKind } from '@omniweb/sdk';

export interface DemoParams {
  device: DeviceChoice;
  /** Checkpoint folder URL, relative to the page (default: the embedded tiny checkpoint the demo server serves). */
  model: string;
  weights: WeightFormat;
  /** 'workers': each stage in its own Web Worker, so the page's thread stays free for audio and video. */
  pipeline: PipelineKind;
  voice: string | null;
  /** Reply tokens per turn. */
  maxTokens: number;
  /** Talker codec codes per reply (each is 20 ms of speech). */
  maxCodes: number;
  /** token2wav's ODE solver (default rk4, the reference's). */
  solver: DitSolver;
  /** Start hands-free listening as soon as the model is loaded. */
  autostart: boolean;
}

export const TINY_MODEL_PATH = 'models/tiny-omni/';

const DEVICES: readonly DeviceChoice[] = ['auto', 'webgpu', 'wasm'];
const WEIGHTS: readonly WeightFormat[] = ['f32', 'f16', 'q8', 'q4'];
const PIPELINES: readonly PipelineKind[] = ['in-thread', 'workers'];

function oneOf<T extends string>(query: URLSearchParams, name: string, allowed: readonly T[], fallback: T): T {
  const value = query.get(name);
  if (value === null) return fallback;
  if (!(allowed as readonly string[]).includes(value)) throw new Error(`?${name}=${value}: expected one of ${allowed.join(', ')}`);
  return value as T;
}

function positiveInteger(query: URLSearchParams, name: string, fallback: number): number {
  const value = query.get(name);
  if (value === null) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`?${name}=${value}: expected an integer ≥ 1`);
  return n;
}

export function readParams(search: string): DemoParams {
  const query = new URLSearchParams(search);
  return {
    device: oneOf(query, 'device', DEVICES, 'auto'),
    model: query.get('model') ?? TINY_MODEL_PATH,
    weights: oneOf(query, 'weights', WEIGHTS, 'f32'),
    // In-thread by default: for the tiny default model one thread beats a worker per stage, each
    // with its own wasm thread pool, on a machine of few cores (bench:e2e).
    pipeline: oneOf(query, 'pipeline', PIPELINES, 'in-thread'),
    voice: query.get('voice'),
    maxTokens: positiveInteger(query, 'maxTokens', 64),
    maxCodes: positiveInteger(query, 'maxCodes', 600),
    solver: oneOf(query, 'solver', DIT_SOLVERS, 'rk4'),
    autostart: query.get('autostart') === '1',
  };
}
