/**
 * Starting a stage worker: a module Web Worker in browsers, a `worker_threads` Worker in Node
 * (a `.ts` entry runs under tsx, as in this repository's tests). Either way the caller gets
 * a comlink endpoint and hears when the worker dies.
 */
import { OmniError } from '@omniweb/core';
import { wrap, type Endpoint, type Remote } from 'comlink';

export interface SpawnedWorker {
  endpoint: Endpoint;
  terminate(): void;
}

/** Hears that the worker stopped (an uncaught error, an exit, a crash); may be called more than once. */
export type DeathListener = (why: string) => void;

const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

/** The worker entry next to this module: `worker.js` once built, `worker.ts` when run from source in Node. */
export async function defaultWorkerUrl(): Promise<URL> {
  const built = new URL('./worker.js', import.meta.url);
  if (!isNode) return built;
  const fs = 'node:fs';
  const { existsSync } = (await import(/* @vite-ignore */ fs)) as typeof import('node:fs');
  if (existsSync(built)) return built;
  const source = new URL('./worker.ts', import.meta.url);
  if (existsSync(source)) return source;
  throw new OmniError('BAD_CONFIG', `no stage worker entry next to ${import.meta.url}: build @omniweb/orchestrator, or pass workerUrl`);
}

export async function spawnWorker(url: string | URL, name: string, died: DeathListener): Promise<SpawnedWorker> {
  return isNode ? spawnNodeWorker(url, name, died) : spawnWebWorker(url, name, died);
}

/** A spawned worker and the object it serves (`serveInWorker`). */
export interface ConnectedWorker<T> {
  remote: Remote<T>;
  terminate(): void;
}

export async function connectWorker<T>(url: string | URL, name: string, died: DeathListener): Promise<ConnectedWorker<T>> {
  const worker = await spawnWorker(url, name, died);
  return { remote: wrap<T>(worker.endpoint), terminate: () => worker.terminate() };
}

async function spawnNodeWorker(url: string | URL, name: string, died: DeathListener): Promise<SpawnedWorker> {
  const threads = 'node:worker_threads';
  const adapter = 'comlink/dist/esm/node-adapter.mjs';
  const { Worker } = (await import(/* @vite-ignore */ threads)) as typeof import('node:worker_threads');
  const { default: nodeEndpoint } = (await import(/* @vite-ignore */ adapter)) as { default: (port: object) => Endpoint };
  const href = url instanceof URL ? url : new URL(url, `file://${process.cwd()}/`);
  // A worker ignores `--import tsx` in its execArgv; a TypeScript entry gets tsx's loader registered first.
  const worker = href.pathname.endsWith('.ts')
    ? new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(href.href)}); });`, { name, eval: true })
    : new Worker(href, { name });
  worker.on('error', (e: Error) => died(`it threw ${e.message}`));
  worker.on('exit', (code: number) => died(`it exited (code ${code})`));
  return { endpoint: nodeEndpoint(worker), terminate: () => { void worker.terminate(); } };
}

function spawnWebWorker(url: string | URL, name: string, died: DeathListener): SpawnedWorker {
  const worker = new Worker(url, { type: 'module', name });
  worker.addEventListener('error', (e) => died(`it threw ${e.message || 'an error (or its script failed to load)'}`));
  worker.addEventListener('messageerror', () => died('a message to it could not be decoded'));
  return { endpoint: worker as unknown as Endpoint, terminate: () => worker.terminate() };
}
