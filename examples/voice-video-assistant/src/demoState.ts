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
  /** Loading failed; pick another model or device. */
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
  latencyMs: TurnLatency;
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
  /** Audio blocks and video frames the live path reports as encoded (its `stats` events). */
  encodedAudioBlocks: number;
  encodedVideoFrames: number;
  /** What push-to-talk turns sent through `session.send` (audioPeak: the largest |sample|). */
  sent: { audioSeconds: number; audioPeak: number; videoFrames: number };
  bargeIns: number;
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
    encodedAudioBlocks: 0, encodedVideoFrames: 0, sent: { audioSeconds: 0, audioPeak: 0, videoFrames: 0 }, bargeIns: 0,
    latencyMs: { firstText: null, firstAudio: null }, turns: [], errors: [],
  };
  window.omniDemo = state;
  return state;
}
