/**
 * The Qwen2.5-Omni vision encoder, the Qwen2.5-VL ViT (fact sheet §4.3).
 *
 * forward(patches): patch embed (a linear over C·T·P·P pixel values) →
 * reorder patches window by window → N × (RMSNorm → q/k/v → 2-D rotary
 * (row, column) → attention inside each window, or inside each frame in the
 * full-attention blocks → proj → residual → RMSNorm → SwiGLU → residual) →
 * merger (RMSNorm, 2×2 patches → one token, MLP with GELU) → tokens back in
 * raster order.
 */
import {
  modelWeights, OmniError,
  type Backend, type RopeSpec, type Tensor, type VisionEncoderConfig, type Weight, type WeightFormat, type WeightSource,
} from '@omniweb/core';
import { visionRopeSpec } from '@omniweb/tmrope';

export type { VisionEncoderConfig, WeightSource } from '@omniweb/core';

/** `grid_thw` of the reference: temporal patches, patch rows, patch columns. */
export type GridTHW = readonly [t: number, h: number, w: number];

/**
 * One image or video as the processor gives it (fact sheet §4.1, §4.2):
 * `pixelValues` [t·h·w, C·T·P·P] patch vectors in merge-group order and
 * `gridThw` in patches; an image is tiled to one temporal patch (t = 1).
 * `@omniweb/media`'s processImage, processVideo and VideoPatchStream outputs fit as they are.
 */
export interface VisualInput {
  pixelValues: Float32Array;
  gridThw: GridTHW;
  /**
   * Frames the patches were made from, when the caller made them: checked to be
   * t · temporal_patch_size (an odd count must be padded by repeating the last frame, §4.2).
   */
  frames?: number;
}

export interface VisualEmbeddings {
  /** [Σ tokens, outHidden], each input's tokens in (t, h/2, w/2) raster order, inputs in call order; the caller disposes it. */
  embeddings: Tensor;
  grids: GridTHW[];
  /** Tokens per input: t·h·w / spatialMergeSize². */
  tokens: number[];
}

/**
 * Where `inspect` is called, with the tensor at that point (valid during the call only):
 * `patchEmbed` ([patches, hidden], input order), `blockInput` (window order),
 * `block.<i>` (output of block i, window order).
 */
export type VisionTap = 'patchEmbed' | 'blockInput' | `block.${number}`;

export interface VisionEncodeOptions {
  /** Debugging and golden checks; awaited, so it may read the tensor. */
  inspect?: (tap: VisionTap, t: Tensor) => void | Promise<void>;
}

export interface VisionBlockWeights {
  norm1: Tensor; // RMSNorm [hidden]
  q: Weight; // [hidden, hidden]
  qBias: Tensor;
  k: Weight;
  kBias: Tensor;
  v: Weight;
  vBias: Tensor;
  proj: Weight;
  projBias: Tensor;
  norm2: Tensor;
  gate: Weight; // [intermediate, hidden]
  gateBias: Tensor;
  up: Weight;
  upBias: Tensor;
  down: Weight; // [hidden, intermediate]
  downBias: Tensor;
}

export interface VisionEncoderWeights {
  format: WeightFormat;
  patchEmbed: Weight; // [hidden, C·T·P·P]: the Conv3d weight flattened; no bias
  blocks: VisionBlockWeights[];
  mergerNorm: Tensor; // ln_q [hidden]
  mergerUp: Weight; // mlp.0 [hidden·m², hidden·m²]
  mergerUpBias: Tensor;
  mergerDown: Weight; // mlp.2 [outHidden, hidden·m²]
  mergerDownBias: Tensor;
}

const PREFIX = 'thinker.visual.';
/** Every RMSNorm of the ViT and merger (fact sheet §10.4). */
const RMS_EPS = 1e-6;
/** Base of the ViT's 2-D rotary frequencies (Qwen2.5-VL's vision rotary, fact sheet §4.3 step 2). */
const ROPE_THETA = 10000;

/**
 * (row, column) of every patch of one grid in the processor's order
 * (fact sheet §4.1: merge groups in raster order, 2×2 patches inside each),
 * stream-major: rows at [0, n), columns at [n, 2n).
 */
export function visionPatchPositions(grid: GridTHW, spatialMergeSize: number): Int32Array {
  const [t, h, w] = grid;
  const m = spatialMergeSize;
  const n = t * h * w;
  const positions = new Int32Array(2 * n);
  let p = 0;
  for (let f = 0; f < t; f++) {
    for (let by = 0; by < h / m; by++) {
      for (let bx = 0; bx < w / m; bx++) {
        for (let dy = 0; dy < m; dy++) {
          for (let dx = 0; dx < m; dx++, p++) {
            positions[p] = by * m + dy;
            positions[n + p] = bx * m + dx;
          }
        }
      }
    }
  }
  return positions;
}

/** Index tables of one forward pass over several grids (fact sheet §4.3 step 3). */
export interface WindowLayout {
  /** Merged tokens listed window by window (the reference's `window_index`, offsets across inputs). */
  windowIndex: Int32Array;
  /** Its inverse: window position of each merged token, to restore raster order after the merger. */
  rasterIndex: Int32Array;
  /** Patch rows in window order: merge groups move whole. */
  patchOrder: Int32Array;
  /** Segment bounds in patches of the windows (`cu_window_seqlens` without empty windows). */
  windowBounds: Int32Array;
  /** Segment bounds in patches of the frames: full attention never crosses frames (§10.6). */
  frameBounds: Int32Array;
  /** (row, column) of each patch in window order, stream-major [2 · patches]. */
  positions: Int32Array;
}

export function windowLayout(grids: readonly GridTHW[], config: VisionEncoderConfig): WindowLayout {
  const m = config.spatialMergeSize;
  const unit = m * m;
  // Window edge in merged tokens: 112 px / 2 / 14 = 4.
  const edge = Math.floor(config.windowSize / m / config.patchSize);
  const patches = grids.reduce((sum, [t, h, w]) => sum + t * h * w, 0);
  const windowIndex = new Int32Array(patches / unit);
  const windowBounds: number[] = [0];
  const frameBounds: number[] = [0];
  let listed = 0;
  let mergedOffset = 0;
  for (const [t, h, w] of grids) {
    const rows = h / m;
    const cols = w / m;
    for (let f = 0; f < t; f++) {
      const frameStart = mergedOffset + f * rows * cols;
      // Windows tile the merged grid from the top left; the right and bottom ones may be partial.
      for (let y0 = 0; y0 < rows; y0 += edge) {
        for (let x0 = 0; x0 < cols; x0 += edge) {
          for (let y = y0; y < Math.min(rows, y0 + edge); y++) {
            for (let x = x0; x < Math.min(cols, x0 + edge); x++) windowIndex[listed++] = frameStart + y * cols + x;
          }
          windowBounds.push(listed * unit);
        }
      }
      frameBounds.push(listed * unit);
    }
    mergedOffset += t * rows * cols;
  }
  const rasterIndex = new Int32Array(windowIndex.length);
  windowIndex.forEach((token, i) => { rasterIndex[token] = i; });
  const patchOrder = new Int32Array(patches);
  for (let i = 0; i < windowIndex.length; i++) for (let u = 0; u < unit; u++) patchOrder[i * unit + u] = windowIndex[i] * unit + u;
  // Positions of all inputs in input order, then permuted like the patches.
  const inputOrder = new Int32Array(2 * patches);
  let done = 0;
  for (const grid of grids) {
    const own = visionPatchPositions(grid, m);
    const n = own.length / 2;
    inputOrder.set(own.subarray(0, n), done);
    inputOrder.set(own.subarray(n), patches + done);
    done += n;
  }
  const positions = new Int32Array(2 * patches);
  for (let p = 0; p < patches; p++) {
    positions[p] = inputOrder[patchOrder[p]];
    positions[patches + p] = inputOrder[patches + patchOrder[p]];
  }
  return {
    windowIndex, rasterIndex, patchOrder,
    windowBounds: Int32Array.from(windowBounds), frameBounds: Int32Array.from(frameBounds), positions,
  };
}

/** Reads the ViT's tensors, checking each shape against the config, and uploads them. */
export async function loadVisionEncoderWeights(
  backend: Backend, source: WeightSource, config: VisionEncoderConfig, format: WeightFormat,
): Promise<VisionEncoderWeights> {
  const { matrix, vector } = modelWeights(backend, source, format, { prefix: PREFIX, config: 'vision config' });
  const { hidden, intermediate, outHidden, inChannels, temporalPatchSize, patchSize } = config;
  const merged = hidden * config.spatialMergeSize ** 2;
  const h = `hidden_size ${hidden}`;
  const i = `intermediate_size ${intermediate}`;
  const blocks: VisionBlockWeights[] = [];
  for (let l = 0; l < config.depth; l++) {
    const p = `blocks.${l}.`;
    blocks.push({
      norm1: await vector(`${p}norm1.weight`, hidden, h),
      q: await matrix(`${p}attn.q.weight`, [hidden, hidden], h),
      qBias: await vector(`${p}attn.q.bias`, hidden, h),
      k: await matrix(`${p}attn.k.weight`, [hidden, hidden], h),
      kBias: await vector(`${p}attn.k.bias`, hidden, h),
      v: await matrix(`${p}attn.v.weight`, [hidden, hidden], h),
      vBias: await vector(`${p}attn.v.bias`, hidden, h),
      proj: await matrix(`${p}attn.proj.weight`, [hidden, hidden], h),
      projBias: await vector(`${p}attn.proj.bias`, hidden, h),
      norm2: await vector(`${p}norm2.weight`, hidden, h),
      gate: await matrix(`${p}mlp.gate_proj.weight`, [intermediate, hidden], `${i}, ${h}`),
      gateBias: await vector(`${p}mlp.gate_proj.bias`, intermediate, i),
      up: await matrix(`${p}mlp.up_proj.weight`, [intermediate, hidden], `${i}, ${h}`),
      upBias: await vector(`${p}mlp.up_proj.bias`, intermediate, i),
      down: await matrix(`${p}mlp.down_proj.weight`, [hidden, intermediate], `${h}, ${i}`),
      downBias: await vector(`${p}mlp.down_proj.bias`, hidden, h),
    });
  }
  const m = `${h} × spatial_merge_size² ${config.spatialMergeSize ** 2}`;
  return {
    format,
    patchEmbed: await matrix('patch_embed.proj.weight', [hidden, inChannels, temporalPatchSize, patchSize, patchSize],
      `${h}, in_channels ${inChannels}, temporal_patch_size ${temporalPatchSize}, patch_size ${patchSize}`),
    blocks,
    mergerNorm: await vector('merger.ln_q.weight', hidden, h),
    mergerUp: await matrix('merger.mlp.0.weight', [merged, merged], m),
    mergerUpBias: await vector('merger.mlp.0.bias', merged, m),
    mergerDown: await matrix('merger.mlp.2.weight', [outHidden, merged], `out_hidden_size ${outHidden}, ${m}`),
    mergerDownBias: await vector('merger.mlp.2.bias', outHidden, `out_hidden_size ${outHidden}`),
  };
}

/** Activations of the blocks over `rows` patches, allocated once per pass. */
class RunState {
  readonly x: Tensor; // [rows, hidden] residual stream, ping-ponged with xAlt
  readonly xAlt: Tensor;
  readonly xb: Tensor; // [rows, hidden] normed input of a sub-block
  readonly q: Tensor;
  readonly q3: Tensor; // view [rows, heads, headDim]
  readonly k: Tensor;
  readonly k3: Tensor;
  readonly v: Tensor;
  readonly v3: Tensor;
  readonly att3: Tensor; // [rows, heads, headDim]
  readonly att: Tensor; // view [rows, hidden]
  readonly xo: Tensor; // [rows, hidden] proj / down output
  readonly gate: Tensor; // [rows, intermediate]
  readonly up: Tensor;
  readonly act: Tensor;
  readonly #owned: Tensor[];

  constructor(private readonly backend: Backend, config: VisionEncoderConfig, readonly rows: number) {
    const { hidden, heads, headDim, intermediate } = config;
    const e = (shape: number[]) => backend.empty(shape);
    this.x = e([rows, hidden]);
    this.xAlt = e([rows, hidden]);
    this.xb = e([rows, hidden]);
    this.q = e([rows, hidden]);
    this.k = e([rows, hidden]);
    this.v = e([rows, hidden]);
    this.att3 = e([rows, heads, headDim]);
    this.xo = e([rows, hidden]);
    this.gate = e([rows, intermediate]);
    this.up = e([rows, intermediate]);
    this.act = e([rows, intermediate]);
    this.#owned = [this.x, this.xAlt, this.xb, this.q, this.k, this.v, this.att3, this.xo, this.gate, this.up, this.act];
    this.q3 = backend.reshape(this.q, [rows, heads, headDim]);
    this.k3 = backend.reshape(this.k, [rows, heads, headDim]);
    this.v3 = backend.reshape(this.v, [rows, heads, headDim]);
    this.att = backend.reshape(this.att3, [rows, hidden]);
  }

  dispose(): void {
    for (const t of this.#owned) this.backend.dispose(t);
  }
}

export class VisionEncoder {
  readonly rope: RopeSpec;
  readonly #fullAttention: ReadonlySet<number>;
  #disposed = false;

  private constructor(readonly backend: Backend, readonly config: VisionEncoderConfig, readonly weights: VisionEncoderWeights) {
    this.rope = visionRopeSpec(config.headDim, ROPE_THETA);
    this.#fullAttention = new Set(config.fullAttnBlocks);
  }

  /** Loads `thinker.visual.*` with the config parsed from config.json (`loadOmniConfig(...).thinker.vision`). */
  static async load(backend: Backend, source: WeightSource, config: VisionEncoderConfig, options: { format?: WeightFormat } = {}): Promise<VisionEncoder> {
    if (!config || !Number.isSafeInteger(config.headDim) || !Array.isArray(config.fullAttnBlocks)) {
      throw new OmniError('BAD_INPUT', 'VisionEncoder.load needs the typed vision config (loadOmniConfig(...).thinker.vision)');
    }
    return new VisionEncoder(backend, config, await loadVisionEncoderWeights(backend, source, config, options.format ?? 'f32'));
  }

  /** The grid of one input, after checking it against its pixel values (BAD_INPUT, NUMERIC). */
  #gridOf(input: VisualInput, where: string): GridTHW {
    const { temporalPatchSize, spatialMergeSize: m, inChannels, patchSize } = this.config;
    if (!input || typeof input !== 'object' || !Array.isArray(input.gridThw) || input.gridThw.length !== 3) {
      throw new OmniError('BAD_INPUT', `${where}: expected { pixelValues: Float32Array, gridThw: [t, h, w] } (patches)`);
    }
    const [t, h, w] = input.gridThw;
    if (!Number.isSafeInteger(t) || t < 1) throw new OmniError('BAD_INPUT', `${where}: gridThw t = ${t}; expected an integer ≥ 1 (temporal patches)`);
    for (const [side, value] of [['h', h], ['w', w]] as const) {
      if (!Number.isSafeInteger(value) || value < m || value % m !== 0) {
        throw new OmniError('BAD_INPUT', `${where}: gridThw ${side} = ${value}; it must be a positive multiple of spatial_merge_size ${m} (patches; sides of ${patchSize * m} px)`);
      }
    }
    const { frames } = input;
    if (frames !== undefined) {
      if (!Number.isSafeInteger(frames) || frames < 1 || frames % temporalPatchSize !== 0) {
        throw new OmniError('BAD_INPUT', `${where}: ${frames} frames; the count must be a positive multiple of temporal_patch_size ${temporalPatchSize} (repeat the last frame to pad it)`);
      }
      if (frames / temporalPatchSize !== t) {
        throw new OmniError('BAD_INPUT', `${where}: ${frames} frames make ${frames / temporalPatchSize} temporal patches, but gridThw t = ${t}`);
      }
    }
    const patchValues = inChannels * temporalPatchSize * patchSize * patchSize;
    const { pixelValues } = input;
    if (!(pixelValues instanceof Float32Array) || pixelValues.length !== t * h * w * patchValues) {
      const got = pixelValues instanceof Float32Array ? `${pixelValues.length} values` : 'no Float32Array';
      throw new OmniError('BAD_INPUT', `${where}: pixelValues holds ${got}; a ${t}×${h}×${w} grid needs ${t * h * w} patches × ${patchValues}`);
    }
    for (let i = 0; i < pixelValues.length; i++) {
      if (!Number.isFinite(pixelValues[i])) throw new OmniError('NUMERIC', `${where}: pixel value ${pixelValues[i]} in patch ${Math.floor(i / patchValues)}`);
    }
    return [t, h, w];
  }

  /**
   * Encodes images and videos in one pass. Attention never crosses inputs or
   * temporal patches, so a live video encoded one temporal patch at a time
   * gives the same tokens as the whole clip.
   */
  async encode(inputs: readonly VisualInput[], options: VisionEncodeOptions = {}): Promise<VisualEmbeddings> {
    this.#checkLive();
    if (!Array.isArray(inputs) || inputs.length === 0) throw new OmniError('BAD_INPUT', 'encode: pass a non-empty array of images/videos { pixelValues, gridThw }');
    const grids = inputs.map((input, i) => this.#gridOf(input, `encode input ${i}`));
    const b = this.backend;
    const { hidden, spatialMergeSize, depth } = this.config;
    const unit = spatialMergeSize ** 2;
    const w = this.weights;
    const inspect = options.inspect;
    const layout = windowLayout(grids, this.config);
    const rows = layout.patchOrder.length;
    const patchValues = w.patchEmbed.cols;
    let pixelData = inputs[0].pixelValues;
    if (inputs.length > 1) {
      pixelData = new Float32Array(rows * patchValues);
      inputs.reduce((offset, input) => (pixelData.set(input.pixelValues, offset), offset + input.pixelValues.length), 0);
    }
    const s = new RunState(b, this.config, rows);
    const temporary: Tensor[] = [];
    const keep = (t: Tensor) => (temporary.push(t), t);
    try {
      const pixels = keep(b.tensor(pixelData, [rows, patchValues]));
      const positions = keep(b.tensor(layout.positions, [2, rows]));
      // The Conv3d with kernel = stride = patch is a matmul on each flattened patch (§4.3 step 1).
      const embedded = keep(b.linear(pixels, w.patchEmbed, null)); // [rows, hidden], input order
      await inspect?.('patchEmbed', embedded);
      b.gatherRows(embedded, layout.patchOrder, s.x);
      await inspect?.('blockInput', s.x);

      const windows = { kind: 'segments', bounds: layout.windowBounds } as const;
      const frames = { kind: 'segments', bounds: layout.frameBounds } as const;
      let x = s.x;
      let xAlt = s.xAlt;
      for (let l = 0; l < depth; l++) {
        const block = w.blocks[l];
        b.rmsnorm(x, block.norm1, RMS_EPS, s.xb);
        b.linear(s.xb, block.q, block.qBias, s.q);
        b.linear(s.xb, block.k, block.kBias, s.k);
        b.linear(s.xb, block.v, block.vBias, s.v);
        b.rotary(s.q3, positions, this.rope, s.q3);
        b.rotary(s.k3, positions, this.rope, s.k3);
        b.attention(s.q3, s.k3, s.v3, { mask: this.#fullAttention.has(l) ? frames : windows }, s.att3);
        b.linear(s.att, block.proj, block.projBias, s.xo);
        b.add(x, s.xo, xAlt);
        [x, xAlt] = [xAlt, x];
        b.rmsnorm(x, block.norm2, RMS_EPS, s.xb);
        b.linear(s.xb, block.gate, block.gateBias, s.gate);
        b.linear(s.xb, block.up, block.upBias, s.up);
        b.siluMul(s.gate, s.up, s.act);
        b.linear(s.act, block.down, block.downBias, s.xo);
        b.add(x, s.xo, xAlt);
        [x, xAlt] = [xAlt, x];
        await inspect?.(`block.${l}`, x);
      }

      // Merger (§4.3 step 5): the m² patches of a merge group are consecutive rows, so a
      // [rows, hidden] → [rows / m², hidden · m²] view puts each group on one row.
      b.rmsnorm(x, w.mergerNorm, RMS_EPS, s.xb);
      const groups = b.reshape(s.xb, [rows / unit, hidden * unit]);
      const up = keep(b.linear(groups, w.mergerUp, w.mergerUpBias));
      const merged = keep(b.linear(keep(b.gelu(up, 'erf')), w.mergerDown, w.mergerDownBias)); // window order
      // Undo the window permutation only now, after the merger (§4.3 step 6, §10.6).
      const embeddings = b.gatherRows(merged, layout.rasterIndex);
      return { embeddings, grids, tokens: grids.map(([t, h, gw]) => (t * h * gw) / unit) };
    } finally {
      s.dispose();
      for (const t of temporary) b.dispose(t);
    }
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    const w = this.weights;
    const all: (Tensor | Weight)[] = [w.patchEmbed, w.mergerNorm, w.mergerUp, w.mergerUpBias, w.mergerDown, w.mergerDownBias];
    for (const block of w.blocks) all.push(...Object.values(block));
    for (const t of all) this.backend.dispose(t);
  }

  #checkLive(): void {
    if (this.#disposed) throw new OmniError('BAD_INPUT', 'this VisionEncoder was disposed');
  }
}
