// Shared plumbing of the pipeline tests: the embedded tiny checkpoint loaded in-thread or in
// workers (wasm, f32), a speaking driver with greedy Thinker and Talker, and one turn's output.
import { createBackend, loadOmniConfig, openCheckpoint } from '@omniweb/core';
import { ensureEmbeddedModel } from '../../cli/src/run.js';
import {
  InThreadPipeline, loadCheckpointInfo, systemText, TurnDriver, WorkerPipeline,
  type CheckpointInfo, type ModuleWeights, type Pipeline, type SendInput, type StageSet, type Stages, type TalkerReply,
  type ThinkerConversation, type ThinkerStage,
} from '../src/index.js';

export const F32: ModuleWeights = { thinker: 'f32', audio: 'f32', vision: 'f32', talker: 'f32' };

export async function tinyModel(): Promise<{ model: string; info: CheckpointInfo }> {
  const model = await ensureEmbeddedModel(() => {});
  const checkpoint = await openCheckpoint(model);
  try {
    return { model, info: await loadCheckpointInfo(checkpoint, await loadOmniConfig(checkpoint)) };
  } finally {
    await checkpoint.close();
  }
}

export async function inThread(model: string, info: CheckpointInfo): Promise<InThreadPipeline> {
  const checkpoint = await openCheckpoint(model);
  try {
    return await InThreadPipeline.load(await createBackend({ device: 'wasm' }), checkpoint, info, F32, () => {}, { model, device: 'wasm' });
  } finally {
    await checkpoint.close();
  }
}

export function inWorkers(model: string, info: CheckpointInfo, workerUrl?: URL): Promise<WorkerPipeline> {
  return WorkerPipeline.load(info, { model, device: 'wasm', formats: F32, workerUrl });
}

/** A pipeline whose Talker replies also report each code they give. */
export function recordingCodes(pipeline: Pipeline, codes: number[]): StageSet {
  return {
    info: pipeline.info,
    recover: (e) => pipeline.recover(e),
    stages(): Stages {
      const stages = pipeline.stages();
      const talker = stages.talker!;
      return {
        ...stages,
        talker: {
          async start(request) {
            const reply = await talker.start(request);
            const recorded: TalkerReply = {
              push: (h, e) => reply.push(h, e),
              endOfText: () => reply.endOfText(),
              stop: () => reply.stop(),
              async next() {
                const code = await reply.next();
                if (code !== null) codes.push(code);
                return code;
              },
            };
            return recorded;
          },
        },
      };
    },
  };
}

/** `c` with its prefill replaced (a remote conversation is a proxy: its methods are forwarded one by one). */
export function withPrefill(c: ThinkerConversation, prefill: ThinkerConversation['prefill']): ThinkerConversation {
  return {
    state: () => c.state(),
    prefill,
    startReply: (o) => c.startReply(o),
    next: () => c.next(),
    stopReply: () => c.stopReply(),
    abort: () => c.abort(),
    markTurn: () => c.markTurn(),
    rewindTurn: () => c.rewindTurn(),
    close: () => c.close(),
  };
}

/**
 * A pipeline that fires `abort` as the Thinker is handed its `nth` prefill (the call goes
 * ahead: the abort races it); `prefills` records how each prefill call ended ('done' or the
 * error code).
 */
export function abortingAtPrefill(pipeline: Pipeline, abort: AbortController, nth: number): StageSet & { prefills: string[] } {
  const prefills: string[] = [];
  let calls = 0;
  let inner: ThinkerStage | null = null;
  let wrapped: ThinkerStage | null = null;
  const wrap = (c: ThinkerConversation) => withPrefill(c, (chunk) => {
    const done = c.prefill(chunk);
    if (++calls === nth) abort.abort();
    return done.then(
      (rows) => { prefills.push('done'); return rows; },
      (e: unknown) => { prefills.push((e as { code?: string }).code ?? String(e)); throw e; },
    );
  });
  return {
    prefills,
    info: pipeline.info,
    recover: (e) => pipeline.recover(e),
    stages(): Stages {
      const stages = pipeline.stages();
      // One wrapper per Thinker stage: the driver opens a new conversation only when the stage changes.
      if (stages.thinker !== inner) {
        const stage = stages.thinker;
        inner = stage;
        wrapped = { open: async (options) => wrap(await stage.open(options)) };
      }
      return { ...stages, thinker: wrapped! };
    },
  };
}

export function speakingDriver(stages: StageSet, maxNewTokens = 6, maxCodes = 60): TurnDriver {
  const speaker = stages.info.speakers!.values().next().value!;
  return new TurnDriver(stages, {
    systemText: systemText(true, undefined), speaker, sampling: {}, maxNewTokens, talker: { sampling: { temperature: 0 }, maxNewTokens: maxCodes },
  });
}

export function textDriver(stages: StageSet, maxNewTokens = 6): TurnDriver {
  return new TurnDriver(stages, { systemText: systemText(false, undefined), speaker: null, sampling: {}, maxNewTokens, talker: {} });
}

export interface TurnOutput {
  ids: number[];
  codes: number;
  text: string;
  pcm: Float32Array;
  interrupted: boolean;
  withdrawn: boolean;
}

/** Runs one turn and gathers what it produced; `onText` sees each text event. */
export async function turn(driver: TurnDriver, input: SendInput, signal = new AbortController().signal, onText: (n: number) => void = () => {}): Promise<TurnOutput> {
  let text = '';
  let texts = 0;
  const chunks: Float32Array[] = [];
  const outcome = await driver.runTurn(input, {
    text: (_, piece) => { text += piece; onText(++texts); },
    audio: (pcm) => { chunks.push(pcm); },
  }, signal);
  const pcm = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) { pcm.set(c, at); at += c.length; }
  return { ids: outcome.ids, codes: outcome.codes, text, pcm, interrupted: outcome.interrupted, withdrawn: outcome.withdrawn };
}
