/**
 * @omniweb/sdk — Qwen2.5-Omni on the user's device, as one object.
 *
 * - `Omni.check({ model, device, weights, pipeline, speech })` → bytes per module at that precision
 *   and per heap (one in-thread, one per stage worker) against the device's limits and a
 *   fits/does-not-fit verdict, from the checkpoint's headers alone.
 * - `Omni.load({ model, device: 'auto'|'webgpu'|'wasm', weights: 'auto'|'f32'|'f16'|'q8'|'q4' | { thinker, audio,
 *   vision, talker }, pipeline: 'in-thread'|'workers', speech, cache, onWarning, onProgress, signal })`
 *   → `Omni` (`device`, `weights`, `voices`, `canSpeak`, `config`, `close()`); without weights (or 'auto')
 *   each module gets the most precise format that fits the device.
 * - `omni.session({ voice, systemPrompt, speech, sampling, maxNewTokens, talker, synthesis, cache })` → `OmniSession`:
 *   `send({ text, audio, image, video } | { ids, … })` runs one turn and resolves with its `TurnResult`;
 *   `events()` streams `text`, `audio` (24 kHz PCM), `turn` start/end (with `TurnStats`) and `error`
 *   events; `interrupt()` stops the reply at once (before the first reply token it withdraws the turn);
 *   `close()`. Turns continue from the Thinker's cache; a failed turn leaves it as it was before.
 *   `attach({ audio, video?, turnTaking?, detector? })` feeds live turns from a microphone and camera
 *   (or PCM chunks and timed frames), encoded and prefilled while the user speaks; `endTurn()` ends
 *   one (push-to-talk); `speech` and `stats` events report the detector and the encoding.
 *
 * Errors are `OmniError`s (BAD_INPUT for a wrong call, OUT_OF_MEMORY when the model does not fit,
 * the packages' own codes for bad files); a failed send leaves the session usable.
 */
export { Omni, type CheckOptions, type LoadOptions, type LoadProgress, type PickedFiles, type PipelineKind, type SessionOptions } from './omni.js';
export { OmniSession, type TurnResult } from './session.js';
export type { AttachOptions, Attachment, PcmSource } from './attachment.js';
export type { LiveProgress } from '@omniweb/orchestrator';
export type { OmniEvent, TurnStats } from './events.js';
export type { AudioSamples, SendInput, VideoFrames } from '@omniweb/orchestrator';
export type { CheckReport, HeapSize, ModuleName, ModuleSize, ModuleWeights, WeightedModule, WeightsOption } from './check.js';
export type { Conversation, SpeechSynthesis, TurnOutcome, TurnSink } from '@omniweb/orchestrator';
export { DIT_SOLVERS, type DitSolver } from '@omniweb/vocoder';
