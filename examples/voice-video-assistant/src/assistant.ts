/**
 * The conversation behind the page: loads a model, keeps one session, turns the talk button
 * into `session.send({ audio, video })` turns and hands-free listening into `session.attach`
 * (the SDK's live path: encoded while the user speaks, turns cut by its speech detector), and
 * routes the session's events to the captions, the PCM player, the latency clock and
 * `window.omniDemo`.
 */
import { OmniError, type CheckpointInput, type DeviceChoice, type WeightFormat } from '@omniweb/core';
import { Omni, type Attachment, type DitSolver, type OmniEvent, type OmniSession, type PipelineKind } from '@omniweb/sdk';
import type { DemoState, TurnRecord } from './demoState.js';
import { FrameRecorder } from './frameRecorder.js';
import { LatencyClock } from './latency.js';
import { MicRecorder } from './micRecorder.js';
import type { PcmPlayer } from './pcmPlayer.js';
import type { View } from './view.js';

export interface ModelChoice {
  model: CheckpointInput;
  device: DeviceChoice;
  weights: WeightFormat;
  /** Picked files load in-thread: each stage worker opens `model` itself, so it must be a URL. */
  pipeline: PipelineKind;
  voice: string | null;
}

/**
 * The Thinker's cache: its first rows (the system prompt) stay and the oldest turns give way
 * (StreamingLLM), so a hands-free conversation with the camera on never runs out of rows.
 */
const CACHE_ROWS = 4096;
const CACHE_SINK_ROWS = 64;

/** Frames per video temporal patch (Qwen2.5-Omni's temporal_patch_size). */
const FRAMES_PER_VIDEO_PATCH = 2;

/** The orchestrator's stage worker, emitted next to the page bundle (rollup.config.mjs). */
const STAGE_WORKER_URL = new URL('./stage-worker.js', import.meta.url);

export interface ReplySettings {
  maxTokens: number;
  maxCodes: number;
  /** token2wav's ODE solver: 'euler' spends a quarter of rk4's DiT evaluations per chunk (earlier audio, further from the reference). */
  solver: DitSolver;
}

/** Whether this browser exposes WebGPU at all (it may still give no adapter). */
const hasWebGPU = () => 'gpu' in navigator && Boolean(navigator.gpu);

const message = (e: unknown) => (e instanceof OmniError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e));

export class Assistant {
  readonly #state: DemoState;
  readonly #view: View;
  readonly #player: PcmPlayer;
  readonly #reply: ReplySettings;
  readonly #latency = new LatencyClock();
  readonly #frames = new FrameRecorder();
  #media: MediaStream | null = null;
  #mic: MicRecorder | null = null;
  #omni: Omni | null = null;
  #session: OmniSession | null = null;
  #loading: AbortController | null = null;
  #turn: TurnRecord | null = null;
  #answer = '';
  /** Push-to-talk turns sent whose `turn end` has not arrived. */
  #pendingSends = 0;
  /** Between a `turn start` and its `turn end`. */
  #turnRunning = false;
  /** Set by a barge-in until the next turn starts: audio of the cut reply already queued in the session's events stays silent. */
  #muted = false;
  #attachment: Attachment | null = null;
  /** The live path's latest `stats` of each turn, summed into the state's encoded counts. */
  readonly #liveStats = new Map<number, { audioBlocks: number; videoPatches: number; droppedVideoFrames: number }>();

  constructor(state: DemoState, view: View, player: PcmPlayer, reply: ReplySettings) {
    this.#state = state;
    this.#view = view;
    this.#player = player;
    this.#reply = reply;
  }

  /** Opens the microphone and camera (the camera is optional: turns then carry audio only). */
  async openMedia(): Promise<void> {
    const audio = { echoCancellation: true, noiseSuppression: false, autoGainControl: false, channelCount: 1 };
    try {
      this.#media = await navigator.mediaDevices.getUserMedia({ audio, video: { width: 320, height: 240 } });
    } catch (e) {
      this.reportError(`camera: ${message(e)}; continuing with the microphone only`);
      this.#media = await navigator.mediaDevices.getUserMedia({ audio });
    }
    this.#view.camera.srcObject = this.#media;
    this.#mic = new MicRecorder(this.#media);
  }

  /** Loads a model (closing the one before) and opens a session with the chosen voice. */
  async load(choice: ModelChoice): Promise<void> {
    this.#loading?.abort();
    const loading = new AbortController();
    this.#loading = loading;
    await this.#unload();
    this.#setPhase('loading');
    Object.assign(this.#state, { device: null, deviceName: null, pipeline: null, voice: null });
    this.#view.showVoices([], null);
    this.#view.showDeviceNotice(choice.device !== 'wasm' && !hasWebGPU()
      ? 'This browser has no WebGPU: the model runs on WebAssembly (CPU), which is slower.'
      : null);
    try {
      const omni = await Omni.load({
        model: choice.model, device: choice.device, weights: choice.weights, signal: loading.signal,
        ...(choice.pipeline === 'workers' ? { pipeline: 'workers', workerUrl: STAGE_WORKER_URL } : {}),
        onProgress: ({ module, bytesDone, bytesTotal }) => {
          this.#view.showProgress(bytesTotal > 0 ? bytesDone / bytesTotal : 0, `${module}: ${(bytesDone / 2 ** 20).toFixed(1)} of ${(bytesTotal / 2 ** 20).toFixed(1)} MiB`);
        },
      });
      if (loading.signal.aborted) {
        await omni.close();
        return;
      }
      this.#omni = omni;
      this.#state.device = omni.device.kind;
      this.#state.deviceName = omni.device.name;
      this.#state.pipeline = choice.pipeline;
      if (choice.device === 'auto' && omni.device.kind === 'wasm' && hasWebGPU()) {
        this.#view.showDeviceNotice('WebGPU is present but gave no adapter: the model runs on WebAssembly (CPU), which is slower.');
      }
      const voice = choice.voice ?? omni.voices[0] ?? null;
      this.#view.showVoices(omni.voices, voice);
      this.useVoice(voice);
      this.#view.showProgress(1, 'loaded');
    } catch (e) {
      if (loading.signal.aborted) return;
      this.reportError(`loading failed: ${message(e)}`);
      this.#setPhase('error');
    } finally {
      if (this.#loading === loading) this.#loading = null;
    }
  }

  /** A new session with this voice (null: a text-only session, for models that cannot speak). */
  useVoice(voice: string | null): void {
    const omni = this.#omni;
    if (!omni) return;
    this.#closeSession();
    this.#view.handsFree.checked = false;
    this.#liveStats.clear();
    const speech = voice !== null && omni.canSpeak;
    let session: OmniSession;
    try {
      session = omni.session({
        ...(speech ? { voice } : { speech: false }),
        maxNewTokens: this.#reply.maxTokens,
        talker: { maxNewTokens: this.#reply.maxCodes },
        ...(speech && { synthesis: { solver: this.#reply.solver } }),
        cache: { kind: 'sinkWindow', sink: CACHE_SINK_ROWS, window: Math.min(CACHE_ROWS, omni.config.thinker.text.maxPositions) - CACHE_SINK_ROWS },
      });
    } catch (e) {
      this.reportError(`voice ${voice}: ${message(e)}`);
      this.#setPhase('error');
      return;
    }
    this.#session = session;
    this.#state.voice = speech ? voice : null;
    this.#pendingSends = 0;
    this.#turnRunning = false;
    this.#setPhase('ready');
    void this.#readEvents(session);
  }

  /**
   * Hands-free on: the microphone and camera go to `session.attach` with VAD turn-taking; the
   * SDK cuts turns where speech ends and interrupts a reply where speech starts. Off: detached.
   */
  async setHandsFree(on: boolean): Promise<void> {
    const session = this.#session;
    if (!session || !this.#media || on === (this.#attachment !== null)) return;
    if (on) {
      if (this.#mic?.recording) return;
      await this.#player.resume();
      const camera = this.#media.getVideoTracks();
      try {
        this.#attachment = session.attach({
          audio: new MediaStream(this.#media.getAudioTracks()),
          ...(camera.length > 0 ? { video: new MediaStream(camera) } : {}),
          turnTaking: 'vad',
        });
      } catch (e) {
        this.reportError(`hands-free: ${message(e)}`);
        this.#view.handsFree.checked = false;
        return;
      }
      this.#state.handsFree = true;
      this.#setPhase('listening');
    } else {
      const attachment = this.#attachment!;
      this.#attachment = null;
      this.#state.handsFree = false;
      await attachment.detach();
      this.#setPhase(this.#pendingSends > 0 ? 'thinking' : 'ready');
    }
  }

  /** Talk button down: cut any reply still speaking (barge-in) and start recording. */
  startTalking(): void {
    if (!this.#session || !this.#mic || this.#mic.recording || this.#attachment) return;
    if (this.#pendingSends > 0 || this.#turnRunning || this.#state.playing) {
      this.#bargeIn();
      this.#session.interrupt();
    }
    void this.#player.resume();
    this.#mic.start();
    const camera = this.#media?.getVideoTracks()[0];
    if (camera) this.#frames.start(camera);
    this.#setPhase('recording');
  }

  /** Talk button up: the recorded clip (and the camera frames) become one turn. */
  async stopTalking(): Promise<void> {
    const session = this.#session;
    if (!session || !this.#mic?.recording) return;
    this.#latency.speechEnded();
    const audio = await this.#mic.stop().catch((e: unknown) => {
      this.reportError(`microphone: ${message(e)}`);
      return null;
    });
    const video = await this.#frames.stop().catch((e: unknown) => {
      this.reportError(`camera frames: ${message(e)}`);
      return null;
    });
    if (!audio) {
      this.#setPhase('ready');
      return;
    }
    this.#state.sent.audioSeconds += audio.samples.length / audio.sampleRate;
    this.#state.sent.audioPeak = audio.samples.reduce((peak, x) => Math.max(peak, Math.abs(x)), this.#state.sent.audioPeak);
    this.#state.sent.videoFrames += video?.frames.length ?? 0;
    this.#pendingSends++;
    this.#setPhase('thinking');
    // A failed turn arrives as an `error` event; the session stays usable.
    session.send(video ? { audio, video } : { audio }).catch(() => undefined);
  }

  reportError(text: string): void {
    this.#state.errors.push(text);
    this.#view.addError(text);
  }

  /**
   * Silences the reply at once: the player drops what it holds, and audio of the cut reply
   * still queued in the session's events is skipped. Stopping the reply itself is
   * `session.interrupt()` for push-to-talk; on the hands-free path the SDK does it when its
   * detector hears speech (the page must not: by the time it reads that event, the new turn
   * may be the one running).
   */
  #bargeIn(): void {
    this.#muted = true;
    const record = { samplesPlayedBefore: this.#state.audioSamplesPlayed, samplesPlayedAtStop: null as number | null };
    this.#state.bargeIns.push(record);
    void this.#player.stop().then((samples) => { record.samplesPlayedAtStop = samples; });
  }

  /** The state's encoded counts: every live turn's latest `stats`, summed. */
  #sumLiveStats(): void {
    let audioBlocks = 0, videoPatches = 0, dropped = 0;
    for (const stats of this.#liveStats.values()) {
      audioBlocks += stats.audioBlocks;
      videoPatches += stats.videoPatches;
      dropped += stats.droppedVideoFrames;
    }
    Object.assign(this.#state, {
      encodedAudioBlocks: audioBlocks,
      encodedVideoPatches: videoPatches,
      encodedVideoFrames: Math.max(0, FRAMES_PER_VIDEO_PATCH * videoPatches - dropped),
      droppedVideoFrames: dropped,
    });
  }

  async #readEvents(session: OmniSession): Promise<void> {
    try {
      for await (const event of session.events()) {
        if (session !== this.#session) continue;
        this.#onEvent(event);
      }
    } catch (e) {
      this.reportError(`session events: ${message(e)}`);
    }
  }

  #onEvent(event: OmniEvent): void {
    const state = this.#state;
    switch (event.type) {
      case 'turn':
        if (event.phase === 'start') {
          this.#turn = { turn: event.turn, textTokens: 0, codes: 0, audioSamples: 0, sampleRates: [], interrupted: false, withdrawn: false, latencyMs: { firstText: null, firstAudio: null } };
          this.#answer = '';
          this.#muted = false;
          this.#turnRunning = true;
          this.#view.showAnswer('');
        } else if (this.#turn) {
          this.#turn.codes = event.stats.codes;
          this.#turn.interrupted = event.interrupted;
          this.#turn.withdrawn = event.withdrawn;
          this.#turn.latencyMs = this.#latency.latency;
          state.turns.push(this.#turn);
          this.#turn = null;
          this.#turnRunning = false;
          if (!this.#attachment) this.#pendingSends = Math.max(0, this.#pendingSends - 1);
          if (state.state !== 'recording') this.#setPhase(this.#attachment ? 'listening' : this.#pendingSends > 0 ? 'thinking' : 'ready');
        }
        break;
      case 'text':
        state.textTokens++;
        if (this.#turn) this.#turn.textTokens++;
        this.#answer += event.text;
        this.#view.showAnswer(this.#answer);
        if (this.#latency.text()) state.latencyMs = this.#latency.latency;
        if (state.state === 'thinking') this.#setPhase('answering');
        break;
      case 'audio':
        if (this.#muted) break;
        this.#player.enqueue(event.pcm, event.sampleRate);
        state.audioSamplesReceived += event.pcm.length;
        state.largestAudioChunk = Math.max(state.largestAudioChunk, event.pcm.length);
        state.playing = true;
        if (this.#turn) {
          this.#turn.audioSamples += event.pcm.length;
          if (!this.#turn.sampleRates.includes(event.sampleRate)) this.#turn.sampleRates.push(event.sampleRate);
        }
        if (this.#latency.audio()) state.latencyMs = this.#latency.latency;
        break;
      case 'error':
        this.reportError(message(event.error));
        // After a lost GPU device the SDK reloads the model on a new device (WebGPU again, or wasm when none can be had): show where it runs now.
        if (this.#omni) {
          state.device = this.#omni.device.kind;
          state.deviceName = this.#omni.device.name;
        }
        break;
      case 'speech':
        if (event.phase === 'start') {
          if (this.#turnRunning || state.playing) this.#bargeIn();
          this.#setPhase('recording');
        } else {
          // The detector's verdict, which trails the real end by its hangover: what the user waits from.
          this.#latency.speechEnded();
          this.#setPhase('thinking');
        }
        state.speech.push({ phase: event.phase, atMs: event.atMs, encodedAudioBlocks: state.encodedAudioBlocks, encodedVideoFrames: state.encodedVideoFrames });
        break;
      case 'stats':
        this.#liveStats.set(event.turn, { audioBlocks: event.audioBlocks, videoPatches: event.videoPatches, droppedVideoFrames: event.droppedVideoFrames });
        this.#sumLiveStats();
        break;
    }
    this.#view.render(state);
  }

  #setPhase(phase: DemoState['state']): void {
    this.#state.state = phase;
    this.#view.render(this.#state);
  }

  #closeSession(): void {
    const session = this.#session;
    this.#session = null;
    this.#attachment = null;
    this.#state.handsFree = false;
    void this.#player.stop();
    // Closing detaches the live inputs too.
    if (session) void session.close();
  }

  async #unload(): Promise<void> {
    this.#closeSession();
    const omni = this.#omni;
    this.#omni = null;
    await omni?.close();
  }
}
