/**
 * @omniweb/orchestrator — a conversation's turns through the pipeline's stages (perception,
 * Thinker, Talker, token2wav), in this thread or one worker per stage.
 *
 * - `TurnDriver` (a `Conversation`) runs turns over a `StageSet`: `perceive`, `prefillChunk`
 *   and `reply` are its steps.
 *   `runLiveTurn` runs a `LiveTurn`: audio blocks and video patches encoded and prefilled
 *   chunk by chunk while the user speaks.
 * - `InThreadPipeline` loads every stage onto one backend here; `WorkerPipeline` runs each
 *   stage in its own worker (`@omniweb/orchestrator/worker` is the worker's entry) and
 *   restarts a worker that fails.
 * - The stage contracts (`stages.ts`) carry host arrays only, so any stage can sit behind a
 *   worker's message port.
 */
export {
  TurnDriver,
  type Conversation, type ConversationOptions, type Recovery, type StageSet, type TurnOutcome, type TurnSink,
} from './driver.js';
export { LiveTurn, type LiveFrame, type LiveProgress, type LiveTurnInput, type LiveTurnSteps } from './liveTurn.js';
export { InThreadPipeline, pipelineModules, type InThreadSource, type Pipeline } from './inThread.js';
export { WorkerPipeline, type WorkerPipelineOptions } from './workers.js';
export { StageWorker, type LoadBytes } from './stageWorker.js';
export { StageHost, serveInWorker, STAGE_MODULES, type StageKind, type StageLoad } from './workerHost.js';
export { connectWorker, defaultWorkerUrl, spawnWorker, type ConnectedWorker, type DeathListener, type SpawnedWorker } from './spawn.js';
export { handOver, owned } from './transfer.js';
export {
  checkSendInput, prepareMedia,
  type AudioFeatures, type AudioSamples, type MediaLayout, type SendInput, type TurnMedia, type VideoFrames, type VisualPatches,
} from './inputs.js';
export {
  disposeModules, loadCheckpointInfo, loadModules,
  type CheckpointInfo, type LoadedModules, type ModuleName, type ModuleWeights, type WeightedModule,
} from './models.js';
export { PromptBuilder, systemText, type ConversationState, type TurnPrompt } from './prompt.js';
export type * from './stages.js';
export { LocalPerception } from './perceptionStage.js';
export { LocalThinker } from './thinkerStage.js';
export { LocalTalker } from './talkerStage.js';
export { LocalSpeech } from './speechStage.js';
