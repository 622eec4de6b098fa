/**
 * The Chromium page of `bench/speech/browser.ts`: the DiT evaluation of ditPass.ts on the
 * page's WebGPU, weights read by HTTP range from the served checkpoint.
 */
import { createWebGPUBackend, openCheckpoint, parseOmniConfigText, readSpeakers, SPEAKERS_FILE, urlFiles } from '@omniweb/core';
import { profileBackend, type OpStat } from '../lib/opProfile.js';
import { ditEvaluations } from './ditPass.js';

/** A PassTiming with its profile as entry lists (what page.evaluate can return). */
export interface PageRun {
  ms: number;
  layersMs: number;
  profile: [string, [string, OpStat][]][];
}

export interface SpeechPageApi {
  dit(layers: number, reps: number): Promise<{ adapter: string; runs: PageRun[]; log: string[] }>;
}

const api: SpeechPageApi = {
  async dit(layers, reps) {
    const checkpoint = await openCheckpoint(urlFiles(`${location.origin}/ckpt/`));
    const log: string[] = [];
    try {
      const config = parseOmniConfigText((await checkpoint.readText('config.json'))!);
      const speakers = await fetch(`/ckpt/${SPEAKERS_FILE}`);
      if (!speakers.ok) throw new Error(`GET /ckpt/${SPEAKERS_FILE}: ${speakers.status}`);
      const [voice] = readSpeakers(await speakers.arrayBuffer()).values();
      const prof = profileBackend(await createWebGPUBackend());
      try {
        const runs = await ditEvaluations(prof, checkpoint, config.token2wav!.dit, voice, layers, reps, (line) => log.push(line));
        return {
          adapter: JSON.stringify(prof.backend.info),
          runs: runs.map((r) => ({ ms: r.ms, layersMs: r.layersMs, profile: [...r.profile].map(([phase, ops]) => [phase, [...ops]] as [string, [string, OpStat][]]) })),
          log,
        };
      } finally {
        prof.backend.destroy();
      }
    } finally {
      await checkpoint.close();
    }
  },
};

Object.assign(globalThis, { speechBench: api });

declare global {
  var speechBench: SpeechPageApi;
}
