/**
 * Peak resident memory of headless Chromium's processes across one step (a model load in a
 * page), from the OS: the browser lists its processes over CDP (SystemInfo.getProcessInfo:
 * type and pid), each one's peak is reset before the step (procStatus.ts) and read after it.
 *
 * CDP does not say which renderer hosts a page. The page's renderer is the one that held the
 * loaded weights: its peak rose above its resident set before the step by at least their
 * device bytes (the wasm heap is renderer memory), while the spare and other renderers stay
 * near their idle size. `pageRenderer` takes the renderer whose peak rose most and refuses
 * to guess when even that one rose less than the weights.
 */
import type { Browser } from 'playwright-core';
import { procStatusBytes, resetPeakRss } from './procStatus.js';

export interface ProcessPeak {
  /** Chromium's process type: browser, renderer, GPU, network.mojom.NetworkService, storage.mojom.StorageService, … */
  type: string;
  pid: number;
  /** VmRSS before the step; 0 for a process that started during it. */
  rssBeforeBytes: number;
  /** VmHWM after the step. */
  peakBytes: number;
  /** Whether the peak was reset before the step; if not, it counts from the process's start. */
  peakReset: boolean;
}

interface ProcessInfo {
  type: string;
  id: number;
}

async function chromiumProcesses(browser: Browser): Promise<ProcessInfo[]> {
  const cdp = await browser.newBrowserCDPSession();
  try {
    const { processInfo } = (await cdp.send('SystemInfo.getProcessInfo')) as { processInfo: ProcessInfo[] };
    return processInfo;
  } finally {
    await cdp.detach();
  }
}

/** A process that exited between listing and reading has no status; it is left out. */
function statusOrNull(field: 'VmHWM' | 'VmRSS', pid: number): number | null {
  try {
    return procStatusBytes(field, pid);
  } catch {
    return null;
  }
}

/** Runs `step` with every Chromium process's peak reset first; returns its result and each process's peak over it. */
export async function measureProcessPeaks<T>(browser: Browser, step: () => Promise<T>): Promise<{ result: T; processes: ProcessPeak[] }> {
  const before = new Map<number, { rss: number; reset: boolean }>();
  for (const { id } of await chromiumProcesses(browser)) {
    const reset = resetPeakRss(id);
    const rss = statusOrNull('VmRSS', id);
    if (rss !== null) before.set(id, { rss, reset });
  }
  const result = await step();
  const processes: ProcessPeak[] = [];
  for (const { type, id } of await chromiumProcesses(browser)) {
    const peakBytes = statusOrNull('VmHWM', id);
    if (peakBytes === null) continue;
    const start = before.get(id);
    processes.push({ type, pid: id, rssBeforeBytes: start?.rss ?? 0, peakBytes, peakReset: start?.reset ?? true });
  }
  return { result, processes };
}

/** How far a process's peak rose above its resident set before the step. */
export const peakRise = (p: ProcessPeak): number => p.peakBytes - p.rssBeforeBytes;

/** The budgeted figure, as in Node (loadOnce.ts): the peak above what stays resident once `deviceBytes` of weights are loaded. */
export const peakOverhead = (renderer: ProcessPeak, deviceBytes: number): number => peakRise(renderer) - deviceBytes;

/** The renderer that hosted the load of `deviceBytes` of weights (see the file comment). */
export function pageRenderer(processes: readonly ProcessPeak[], deviceBytes: number): ProcessPeak {
  const renderers = processes.filter((p) => p.type === 'renderer').sort((a, b) => peakRise(b) - peakRise(a));
  const MiB = 2 ** 20;
  if (renderers.length === 0 || peakRise(renderers[0]) < deviceBytes) {
    const rises = renderers.map((p) => `${p.pid}: +${(peakRise(p) / MiB).toFixed(0)} MiB`).join(', ') || 'none';
    throw new Error(`no renderer's peak rose by the ${(deviceBytes / MiB).toFixed(0)} MiB of weights it loaded (renderers: ${rises})`);
  }
  return renderers[0];
}

/** The first process of a type (GPU, network service, browser), or null when Chromium runs none. */
export const processOfType = (processes: readonly ProcessPeak[], type: string): ProcessPeak | null =>
  processes.find((p) => p.type === type) ?? null;
