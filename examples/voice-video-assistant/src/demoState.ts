/**
 * The page's live state, published as `window.omniDemo` so that people (devtools) and tests
 * (Playwright) read the same figures the panels show.
 */
import type { TurnLatency } from './latency.js';

export type DemoPhase =
  | 'loading'
  /** Model loaded; waiting for the talk button. */
  | 'ready'
  /** Hands-free: waiting for the user to speak. */
  | 'listening'
  /** The user is speaking (button held, or the VAD heard speech). */
  | 'recording'
  /** The turn was sent; no reply token yet. */
  | 'thinking'
  /** Reply tokens are streaming. */
  | 'answering'
  /** No usable session: loading failed (pick another model or device), or the voice was refused. */
  | 'error';

export interface TurnRecord {
  turn: number;
  textTokens: number;
  /** Codec codes the Talker made (each is 480 samples at 24 kHz). */
  codes: number;
  audioSamples: number;
  /** Every distinct rate the turn's audio events carried. */
  sampleRates: number[];
  interrupted: boolean;
  /** Interrupted before its first reply token: the model forgot the turn. */
  withdrawn: boolean;
  latencyMs: TurnLatency;
}

/** A speech event of the hands-free path, with what had been encoded when it arrived. */
export interface SpeechRecord {
  phase: 'start' | 'end';
  /** Audio time since listening started (the detector's clock). */
  atMs: number;
  encodedAudioBlocks: number;
  encodedVideoFrames: number;
}

/** The user talked over a reply: samples played as last reported before, and when the player obeyed the stop. */
export interface BargeInRecord {
  samplesPlayedBefore: number;
  samplesPlayedAtStop: number | null;
}

export interface DemoState {
  state: DemoPhase;
  /** 'webgpu' or 'wasm' once loaded. */
  device: string | null;
  deviceName: string | null;
  /** 'workers' or 'in-thread' once loaded. */
  pipeline: string | null;
  voice: string | null;
  textTokens: number;
  audioSamplesReceived: number;
  audioSamplesPlayed: number;
  /** Largest |sample| the player has output. */
  audioPeakPlayed: number;
  /** Largest single audio event, in samples: the unit a barge-in may overrun by. */
  largestAudioChunk: number;
  playing: boolean;
  /** Listening through `session.attach` (VAD turn-taking). */
  handsFree: boolean;
  /**
   * What the hands-free path reports as encoded (its `stats` events, summed over turns): audio
   * blocks of 2 s, video temporal patches of 2 frames, and the frames in them that were encoded
   * (the frames of patches less those dropped because the vision encoder was behind).
   */
  encodedAudioBlocks: number;
  encodedVideoPatches: number;
  encodedVideoFrames: number;
  droppedVideoFrames: number;
  speech: SpeechRecord[];
  /** What push-to-talk turns sent through `session.send` (audioPeak: the largest |sample|). */
  sent: { audioSeconds: number; audioPeak: number; videoFrames: number };
  bargeIns: BargeInRecord[];
  latencyMs: TurnLatency;
  turns: TurnRecord[];
  errors: string[];
}

declare global {
  interface Window {
    omniDemo: DemoState;
  }
}

export function publishDemoState(): DemoState {
  const state: DemoState = {
    state: 'loading', device: null, deviceName: null, pipeline: null, voice: null,
    textTokens: 0, audioSamplesReceived: 0, audioSamplesPlayed: 0, audioPeakPlayed: 0, largestAudioChunk: 0, playing: false,
    handsFree: false, encodedAudioBlocks: 0, encodedVideoPatches: 0, encodedVideoFrames: 0, droppedVideoFrames: 0, speech: [],
    sent: { audioSeconds: 0, audioPeak: 0, videoFrames: 0 }, bargeIns: [],
    latencyMs: { firstText: null, firstAudio: null }, turns: [], errors: [],
  };
  window.omniDemo = state;
  return state;
}
