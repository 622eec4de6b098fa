// Shared test plumbing: golden files, the tiny checkpoint, a synthetic checkpoint builder.
import { expect } from 'vitest';
import { fileURLToPath } from 'node:url';
import {
  isOmniError, loadOmniConfig, openCheckpoint, openSafetensors, readCase, writeSafetensors,
  type Backend, type HostArray, type OmniErrorCode, type Tensor, type ThinkerConfig, type WeightFormat,
} from '@omniweb/core';
import { createWebGPUBackend } from '@omniweb/core';
import { createOracleBackend } from '@omniweb/kernels';
// TEMPORARY path: core's index does not export the wasm backend yet.
import { createWasmBackend } from '../../core/src/wasm/index.js';
import { Thinker, seededRandom, type MediaEmbeddings } from '../src/index.js';

export interface BackendCase {
  label: string;
  make: () => Backend | Promise<Backend>;
  /**
   * The oracle rounds every element once from f64, so the same maths chunked
   * differently gives the same bits; device kernels may pick other reduction
   * orders (GEMV vs tiled matmul), so there equal means within `tol`.
   */
  tol: number;
}

const ORACLE: BackendCase = { label: 'oracle', make: createOracleBackend, tol: 0 };
const WASM: BackendCase = { label: 'wasm', make: () => createWasmBackend(), tol: 1e-6 };
const WEBGPU: BackendCase = { label: 'webgpu', make: () => createWebGPUBackend(), tol: 1e-6 };
/** For the tiny checkpoint (vocab 151936): WebGPU on SwiftShader spends seconds per lm_head, so it runs the golden suite only. */
export const TINY_BACKENDS: BackendCase[] = [ORACLE, WASM];
/** For small synthetic models. */
export const ALL_BACKENDS: BackendCase[] = [ORACLE, WASM, WEBGPU];

export const GOLDEN = fileURLToPath(new URL('../../../fixtures/golden/', import.meta.url));
export const TINY = `${GOLDEN}tiny-omni`;

export async function loadTiny(backend: Backend, format: WeightFormat = 'f32'): Promise<Thinker> {
  const checkpoint = await openCheckpoint(TINY);
  try {
    const config = (await loadOmniConfig(checkpoint, ['thinker'])).thinker;
    return await Thinker.load(backend, checkpoint, config, { format });
  } finally {
    await checkpoint.close();
  }
}

export interface ThinkerCase {
  ids: Int32Array;
  /** Stream-major [3 · L]. */
  positions: Int32Array;
  ropeDeltas: number;
  inputsEmbeds: Float32Array;
  /** [layers + 1][L · hidden]; the last is after the final norm. */
  hiddenStates: Float32Array[];
  logitsLast: Float32Array;
  logitsArgmax: Int32Array;
  logitsHead: Float32Array; // [L, 256]
  logitsTail: Float32Array; // [L, 336] = logits[:, 151600:]
  generatedIds: number[];
  stepLogitsTail: Float32Array; // [8, 336]
  length: number;
}

export async function loadCase(name: 'thinker_p1' | 'thinker_p2'): Promise<ThinkerCase> {
  const c = await readCase(`${GOLDEN}${name}.safetensors`);
  const get = (key: string): HostArray => {
    const a = c.get(key);
    if (!a) throw new Error(`${name} lacks ${key}`);
    return a;
  };
  const hs = get('hidden_states');
  const [layersPlusOne, length, hidden] = hs.shape;
  const hsData = hs.data as Float32Array;
  return {
    ids: get('input_ids').data as Int32Array,
    positions: get('position_ids').data as Int32Array,
    ropeDeltas: (get('rope_deltas').data as Int32Array)[0],
    inputsEmbeds: get('inputs_embeds').data as Float32Array,
    hiddenStates: Array.from({ length: layersPlusOne }, (_, l) => hsData.slice(l * length * hidden, (l + 1) * length * hidden)),
    logitsLast: get('logits_last').data as Float32Array,
    logitsArgmax: get('logits_argmax').data as Int32Array,
    logitsHead: get('logits_vocab_0_256').data as Float32Array,
    logitsTail: get('logits_vocab_151600_151936').data as Float32Array,
    generatedIds: Array.from(get('generated_ids').data as Int32Array),
    stepLogitsTail: get('generated_step_logits_151600_151936').data as Float32Array,
    length,
  };
}

/**
 * Media rows for the ids path: the golden inputs_embeds rows at each kind's
 * placeholder positions (stand-ins until the audio and vision encoders land).
 */
export function mediaFromGolden(backend: Backend, config: ThinkerConfig, c: ThinkerCase): MediaEmbeddings {
  const hidden = config.text.hidden;
  const media: MediaEmbeddings = {};
  for (const kind of ['audio', 'image', 'video'] as const) {
    const rows: number[] = [];
    c.ids.forEach((id, t) => { if (id === config.tokens[kind]) rows.push(t); });
    if (rows.length === 0) continue;
    const data = new Float32Array(rows.length * hidden);
    rows.forEach((t, i) => data.set(c.inputsEmbeds.subarray(t * hidden, (t + 1) * hidden), i * hidden));
    media[kind] = backend.tensor(data, [rows.length, hidden]);
  }
  return media;
}

/** Columns [from, from + count) of a row-major [rows, cols] array. */
export function columns(data: Float32Array, rows: number, cols: number, from: number, count: number): Float32Array {
  const out = new Float32Array(rows * count);
  for (let r = 0; r < rows; r++) out.set(data.subarray(r * cols + from, r * cols + from + count), r * count);
  return out;
}

export async function expectOmniError(run: () => unknown, code: OmniErrorCode, message?: RegExp): Promise<void> {
  let caught: unknown;
  try {
    await run();
  } catch (e) {
    caught = e;
  }
  expect(isOmniError(caught, code), `expected OmniError ${code}, got ${String(caught)}`).toBe(true);
  if (message) expect((caught as Error).message).toMatch(message);
}

export function textPositions(start: number, count: number): Int32Array {
  const p = new Int32Array(3 * count);
  for (let s = 0; s < 3; s++) for (let t = 0; t < count; t++) p[s * count + t] = start + t;
  return p;
}

export async function readAll(backend: Backend, t: Tensor): Promise<Float32Array> {
  return (await backend.read(t)) as Float32Array;
}

export interface SyntheticShape {
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  /** No thinker.lm_head.weight: the head is tied to the embedding. */
  tied: boolean;
  /** Puts a NaN into this layer's down_proj. */
  nanLayer?: number;
  seed?: number;
}

export interface Synthetic {
  config: ThinkerConfig;
  tensors: Map<string, Float32Array>;
  bytes: Uint8Array;
}

/**
 * A random Thinker checkpoint of any shape (with the tiny model's config as
 * a base for everything else): exercises configs other than the golden one.
 */
export async function syntheticCheckpoint(shape: SyntheticShape): Promise<Synthetic> {
  const checkpoint = await openCheckpoint(TINY);
  let base: ThinkerConfig;
  try {
    base = (await loadOmniConfig(checkpoint, ['thinker'])).thinker;
  } finally {
    await checkpoint.close();
  }
  const { vocab, hidden, layers, heads, kvHeads, headDim, intermediate } = shape;
  const half = headDim / 2;
  const spatial = Math.floor((3 * half) / 8); // the real sections' 2 : 3 : 3 proportion
  const config: ThinkerConfig = {
    ...base,
    text: {
      ...base.text, vocab, hidden, layers, heads, kvHeads, headDim, intermediate, tieWordEmbeddings: shape.tied,
      mropeSection: [half - 2 * spatial, spatial, spatial],
    },
    tokens: {
      ...base.tokens, audio: vocab - 10, audioStart: vocab - 9, audioEnd: vocab - 8, image: vocab - 7, video: vocab - 6,
      visionStart: vocab - 5, visionEnd: vocab - 4, eos: vocab - 3, pad: vocab - 2, bos: vocab - 1,
    },
  };
  const random = seededRandom(shape.seed ?? 1);
  const tensors = new Map<string, Float32Array>();
  const entries: [string, HostArray][] = [];
  const add = (name: string, dims: number[], scale: number, offset = 0) => {
    const data = Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => offset + scale * (random() + random() + random() - 1.5) * 2);
    tensors.set(name, data);
    entries.push([name, { dtype: 'f32', shape: dims, data }]);
  };
  add('thinker.model.embed_tokens.weight', [vocab, hidden], 0.5);
  for (let l = 0; l < layers; l++) {
    const p = `thinker.model.layers.${l}.`;
    add(`${p}input_layernorm.weight`, [hidden], 0.1, 1);
    add(`${p}self_attn.q_proj.weight`, [heads * headDim, hidden], 1 / Math.sqrt(hidden));
    add(`${p}self_attn.q_proj.bias`, [heads * headDim], 0.05);
    add(`${p}self_attn.k_proj.weight`, [kvHeads * headDim, hidden], 1 / Math.sqrt(hidden));
    add(`${p}self_attn.k_proj.bias`, [kvHeads * headDim], 0.05);
    add(`${p}self_attn.v_proj.weight`, [kvHeads * headDim, hidden], 1 / Math.sqrt(hidden));
    add(`${p}self_attn.v_proj.bias`, [kvHeads * headDim], 0.05);
    add(`${p}self_attn.o_proj.weight`, [hidden, heads * headDim], 1 / Math.sqrt(heads * headDim));
    add(`${p}post_attention_layernorm.weight`, [hidden], 0.1, 1);
    add(`${p}mlp.gate_proj.weight`, [intermediate, hidden], 1 / Math.sqrt(hidden));
    add(`${p}mlp.up_proj.weight`, [intermediate, hidden], 1 / Math.sqrt(hidden));
    add(`${p}mlp.down_proj.weight`, [hidden, intermediate], 1 / Math.sqrt(intermediate));
    if (shape.nanLayer === l) tensors.get(`${p}mlp.down_proj.weight`)![3] = NaN;
  }
  add('thinker.model.norm.weight', [hidden], 0.1, 1);
  if (!shape.tied) add('thinker.lm_head.weight', [vocab, hidden], 1 / Math.sqrt(hidden));
  return { config, tensors, bytes: writeSafetensors(entries) };
}

export async function loadSynthetic(backend: Backend, synthetic: Synthetic, format: WeightFormat = 'f32'): Promise<Thinker> {
  const checkpoint = await openSafetensors(synthetic.bytes);
  try {
    return await Thinker.load(backend, checkpoint, synthetic.config, { format });
  } finally {
    await checkpoint.close();
  }
}
