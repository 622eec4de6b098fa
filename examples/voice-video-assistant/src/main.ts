/**
 * The voice & video assistant page: wires the controls to the Assistant, loads the model the
 * query string names (default: the embedded tiny checkpoint the demo server serves) and,
 * with `?autostart=1`, starts hands-free listening once it and the microphone are ready.
 */
import { blobFiles, type CheckpointInput, type DeviceChoice, type WeightFormat } from '@omniweb/core';
import type { PipelineKind } from '@omniweb/sdk';
import { Assistant } from './assistant.js';
import { publishDemoState } from './demoState.js';
import { readParams, TINY_MODEL_PATH } from './params.js';
import { PcmPlayer } from './pcmPlayer.js';
import { View } from './view.js';

/** The rate Qwen2.5-Omni speaks at; the player's context runs at it. */
const SPEECH_SAMPLE_RATE = 24_000;

async function main(): Promise<void> {
  const state = publishDemoState();
  const view = new View();
  let params;
  try {
    params = readParams(location.search);
  } catch (e) {
    state.state = 'error';
    state.errors.push((e as Error).message);
    view.addError((e as Error).message);
    view.render(state);
    return;
  }
  view.device.value = params.device;
  view.weights.value = params.weights;
  view.pipeline.value = params.pipeline;
  if (params.model !== TINY_MODEL_PATH) {
    view.modelForm.querySelector<HTMLInputElement>('input[value="url"]')!.checked = true;
    view.modelUrl.value = params.model;
    view.showTinyNotice(false);
  }
  view.render(state);

  const player = await PcmPlayer.create(SPEECH_SAMPLE_RATE, (progress) => {
    state.audioSamplesPlayed = progress.samples;
    state.audioPeakPlayed = progress.peak;
    state.playing = progress.playing;
    view.render(state);
  });
  const assistant = new Assistant(state, view, player, { maxTokens: params.maxTokens, maxCodes: params.maxCodes, solver: params.solver });

  const talkDown = (event: Event) => {
    event.preventDefault();
    assistant.startTalking();
  };
  const talkUp = () => void assistant.stopTalking();
  view.talk.addEventListener('pointerdown', talkDown);
  view.talk.addEventListener('pointerup', talkUp);
  view.talk.addEventListener('pointerleave', talkUp);
  // The space bar is the keyboard's talk button.
  view.talk.addEventListener('keydown', (e) => { if (e.key === ' ' && !e.repeat) talkDown(e); });
  view.talk.addEventListener('keyup', (e) => { if (e.key === ' ') talkUp(); });
  view.voice.addEventListener('change', () => assistant.useVoice(view.voice.value));
  view.handsFree.addEventListener('change', () => void assistant.setHandsFree(view.handsFree.checked));

  const chosenModel = (): CheckpointInput | null => {
    const source = new FormData(view.modelForm).get('source');
    if (source === 'tiny') return new URL(TINY_MODEL_PATH, location.href).href;
    if (source === 'url') return view.modelUrl.value ? new URL(view.modelUrl.value, location.href).href : null;
    const files = view.modelFolder.files;
    return files && files.length > 0 ? blobFiles(files, files[0].webkitRelativePath.split('/')[0] || 'picked folder') : null;
  };
  view.modelForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const model = chosenModel();
    if (model === null) {
      assistant.reportError('pick a model: a checkpoint URL or a local folder with config.json and the safetensors');
      return;
    }
    view.showTinyNotice(new FormData(view.modelForm).get('source') === 'tiny');
    const pipeline = typeof model === 'string' ? view.pipeline.value as PipelineKind : 'in-thread';
    void assistant.load({ model, device: view.device.value as DeviceChoice, weights: view.weights.value as WeightFormat, pipeline, voice: null });
  });

  const media = assistant.openMedia().catch((e: unknown) => {
    assistant.reportError(`microphone: ${(e as Error).message}; the talk button needs one`);
  });
  await assistant.load({
    model: new URL(params.model, location.href).href, device: params.device, weights: params.weights, pipeline: params.pipeline, voice: params.voice,
  });
  await media;
  if (params.autostart && state.state === 'ready') {
    view.handsFree.checked = true;
    await assistant.setHandsFree(true);
  }
}

void main();
