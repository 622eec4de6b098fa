/**
 * The Token2Wav DiT (fact sheet §8.1–8.3): a flow-matching transformer whose velocity, integrated
 * from noise, gives the log-mel of the codec codes in a speaker's voice.
 *
 * forward(x, t): time embedding (sinusoid → Linear → SiLU → Linear) → input embedding (one
 * Linear over [x, ECAPA(ref mel), codec embedding repeated per mel frame, cond]) → N × (adaLN-zero
 * modulated LayerNorm → attention over block windows, rotary on head 0 only → gated residual →
 * modulated LayerNorm → tanh-GELU FFN → gated residual) → final modulated LayerNorm → proj_out.
 * sample: RK4 (3/8 rule) over the sway-warped time grid, with classifier-free guidance; midpoint
 * and Euler are cheaper options (2 and 1 evaluations per step instead of 4).
 *
 * Both guidance branches run in one pass (§8.3: batch 2 = [conditional, unconditional]), their
 * rows interleaved frame by frame: row 2t + b is frame t of branch b. Row ops (Linear, LayerNorm,
 * GELU) see one [2T, hidden] matrix, and attention sees [T, 2·heads, headDim], so each branch is
 * its own set of heads: the block mask is the plain one and no branch sees the other's keys.
 * That halves the dispatches of two passes with the same arithmetic.
 *
 * What does not change during the ODE is computed once per window, not per evaluation as the
 * reference does: the ECAPA outputs and the speaker/code part of the input projection.
 */
import {
  OmniError,
  type Backend, type DitConfig, type RopeSpec, type Tensor, type Weight, type WeightFormat,
} from '@omniweb/core';
import { loadEcapaWeights, minReferenceFrames, SpeakerEncoder } from './ecapa.js';
import { columns, release, WeightLoader, type WeightSource } from './weights.js';

export type { DitConfig } from '@omniweb/core';

interface Linear {
  w: Weight;
  b: Tensor;
}

interface DitBlockWeights {
  /** adaLN-zero: attn_norm.linear cut into its six [hidden, hidden] chunks. The scale biases carry the "1 +" of (1 + scale). */
  shiftMsa: Linear;
  scaleMsa: Linear;
  gateMsa: Linear;
  shiftMlp: Linear;
  scaleMlp: Linear;
  gateMlp: Linear;
  q: Linear;
  k: Linear;
  v: Linear;
  out: Linear;
  ff1: Linear; // [hidden·ff_mult, hidden]
  ff2: Linear;
  /** Key blocks each query block sees before and after its own (§8.2 step 7). */
  back: number;
  ahead: number;
}

export interface DitWeights {
  timeMlp1: Linear; // [hidden, sinusoid width]
  timeMlp2: Linear;
  codecEmbed: Weight; // [num_embeds + 1, emb_dim]
  /** input_embed.proj cut into the column blocks of [x, speaker, code, cond]; the bias rides on the cond block. */
  inputMel: Weight;
  inputSpeaker: Weight;
  inputCode: Weight;
  inputCond: Linear;
  blocks: DitBlockWeights[];
  /** norm_out.linear: scale first, then shift (the reverse of the blocks' order, §8.2 step 8). */
  finalScale: Linear;
  finalShift: Linear;
  projOut: Linear;
  held: (Tensor | Weight)[];
}

const PREFIX = 'token2wav.code2wav_dit_model.';
/** DiT LayerNorms have no affine and eps 1e-6 (§8.2 step 6). */
const NORM_EPS = 1e-6;

async function loadDitWeights(loader: WeightLoader, config: DitConfig): Promise<DitWeights> {
  const { hidden, heads, headDim, melDim, embDim } = config;
  const inner = heads * headDim;
  const ff = hidden * config.ffMult;
  const condDim = config.ecapa.condDim;
  const speakerDim = config.ecapa.outDim;
  const h = `hidden_size ${hidden}`;
  const linear = async (name: string, rows: number, cols: number, because: string): Promise<Linear> => ({
    w: loader.matrix(await loader.values(`${name}.weight`, [rows, cols], because), rows, cols),
    b: await loader.vector(`${name}.bias`, rows, because),
  });
  /** A Linear's weight and bias cut into `count` row chunks; `plusOne` chunks get 1 added to their bias. */
  const chunks = async (name: string, count: number, plusOne: readonly number[], because: string): Promise<Linear[]> => {
    const w = await loader.values(`${name}.weight`, [count * hidden, hidden], because);
    const b = await loader.values(`${name}.bias`, [count * hidden], because);
    return Array.from({ length: count }, (_, c) => {
      const bias = b.slice(c * hidden, (c + 1) * hidden);
      if (plusOne.includes(c)) for (let i = 0; i < hidden; i++) bias[i] += 1;
      return { w: loader.matrix(w.subarray(c * hidden * hidden, (c + 1) * hidden * hidden), hidden, hidden), b: loader.tensor(bias, [hidden]) };
    });
  };
  const sinusoidWidth = loader.source.info(`${PREFIX}time_embed.time_mlp.0.weight`).shape[1];
  if (!(sinusoidWidth >= 4 && sinusoidWidth % 2 === 0)) {
    throw new OmniError('SHAPE_MISMATCH', `${PREFIX}time_embed.time_mlp.0.weight takes ${sinusoidWidth} inputs; the time sinusoid needs an even width ≥ 4`);
  }
  const timeMlp1 = await linear(`${PREFIX}time_embed.time_mlp.0`, hidden, sinusoidWidth, h);
  const timeMlp2 = await linear(`${PREFIX}time_embed.time_mlp.2`, hidden, hidden, h);
  const tableRows = config.numEmbeds + 1;
  const table = await loader.values(`${PREFIX}text_embed.codec_embed.weight`, [tableRows, embDim], `num_embeds ${config.numEmbeds} + 1, emb_dim ${embDim}`);
  // The concat order of the input projection matters (§8.2 step 4): [x, speaker, code, cond].
  const inputWidth = melDim + speakerDim + embDim + condDim;
  const inputBecause = `${h}; mel ${melDim} + enc_dim ${speakerDim} + emb_dim ${embDim} + enc_emb_dim ${condDim}`;
  const proj = await loader.values(`${PREFIX}input_embed.proj.weight`, [hidden, inputWidth], inputBecause);
  const block = (from: number, width: number) => loader.matrix(columns(proj, hidden, inputWidth, from, width), hidden, width);
  const inputMel = block(0, melDim);
  const inputSpeaker = block(melDim, speakerDim);
  const inputCode = block(melDim + speakerDim, embDim);
  const inputCond = { w: block(melDim + speakerDim + embDim, condDim), b: await loader.vector(`${PREFIX}input_embed.proj.bias`, hidden, inputBecause) };
  const blocks: DitBlockWeights[] = [];
  for (let l = 0; l < config.layers; l++) {
    const p = `${PREFIX}transformer_blocks.${l}.`;
    const [shiftMsa, scaleMsa, gateMsa, shiftMlp, scaleMlp, gateMlp] = await chunks(`${p}attn_norm.linear`, 6, [1, 4], `6 × ${h}`);
    const attention = `${heads} heads × head_dim ${headDim}, ${h}`;
    blocks.push({
      shiftMsa, scaleMsa, gateMsa, shiftMlp, scaleMlp, gateMlp,
      q: await linear(`${p}attn.to_q`, inner, hidden, attention),
      k: await linear(`${p}attn.to_k`, inner, hidden, attention),
      v: await linear(`${p}attn.to_v`, inner, hidden, attention),
      out: await linear(`${p}attn.to_out.0`, hidden, inner, attention),
      ff1: await linear(`${p}ff.ff.0`, ff, hidden, `${h} × ff_mult ${config.ffMult}`),
      ff2: await linear(`${p}ff.ff.3`, hidden, ff, `${h} × ff_mult ${config.ffMult}`),
      back: config.lookBackwardLayers.includes(l) ? 1 : 0,
      ahead: config.lookAheadLayers.includes(l) ? 1 : 0,
    });
  }
  const [finalScale, finalShift] = await chunks(`${PREFIX}norm_out.linear`, 2, [0], `2 × ${h}`);
  return {
    timeMlp1,
    timeMlp2,
    codecEmbed: loader.matrix(table, tableRows, embDim),
    inputMel,
    inputSpeaker,
    inputCode,
    inputCond,
    blocks,
    finalScale,
    finalShift,
    projOut: await linear(`${PREFIX}proj_out`, melDim, hidden, `mel_dim ${melDim}, ${h}`),
    held: loader.held,
  };
}

/**
 * The sinusoid of time t (§8.2 step 1): sin then cos of 1000·t·e^(−i·ln(10⁴)/(half − 1)),
 * rounded after each step as torch's float32 ops round, since 1000·t reaches 1000 radians.
 */
function timeSinusoid(t: number, width: number): Float32Array {
  const half = width / 2;
  const rate = Math.fround(-Math.log(10000) / (half - 1));
  const scaled = Math.fround(1000 * Math.fround(t));
  const out = new Float32Array(width);
  for (let i = 0; i < half; i++) {
    const angle = Math.fround(scaled * Math.fround(Math.exp(Math.fround(i * rate))));
    out[i] = Math.sin(angle);
    out[half + i] = Math.cos(angle);
  }
  return out;
}

/**
 * The ODE's time points (§8.3): torch.linspace(0, 1, steps) warped by t + s·(cos(πt/2) − 1 + t),
 * rounded like the reference's float32 tensor ops.
 */
function swayTimes(steps: number, sway: number): number[] {
  const step = Math.fround(1 / (steps - 1));
  return Array.from({ length: steps }, (_, i) => {
    // linspace fills from both ends (start + i·step, then end − (steps − 1 − i)·step).
    const t = i < steps / 2 ? Math.fround(i * step) : Math.fround(1 - Math.fround((steps - 1 - i) * step));
    const warp = Math.fround(Math.fround(Math.fround(Math.cos(Math.fround((Math.PI / 2) * t))) - 1) + t);
    return Math.fround(t + Math.fround(sway * warp));
  });
}

/** The voice of an utterance, fixed for all its windows: ECAPA outputs and the speaker rows of the input projection. */
export class DitCondition {
  constructor(
    private readonly backend: Backend,
    /** ECAPA of the reference mel and of a zero mel, [1, enc_dim] each (§8.3: the unconditional branch still runs it). */
    readonly speaker: readonly [Tensor, Tensor],
    /** Per branch, Linear of [speaker, cond] (+ bias): one row of [2·hidden], added to every frame pair. */
    readonly speakerRows: Tensor,
  ) {}

  dispose(): void {
    release(this.backend, [...this.speaker, this.speakerRows]);
  }
}

/**
 * The ODE solvers of `sample`. rk4 is the reference (§8.3: 3/8 rule, 4 evaluations per step);
 * midpoint (2 per step) and euler (1 per step, the Qwen vLLM streamer's class default) spend
 * fewer DiT evaluations for a mel that departs from the reference's.
 */
export type DitSolver = 'rk4' | 'midpoint' | 'euler';

export const DIT_SOLVERS: readonly DitSolver[] = ['rk4', 'midpoint', 'euler'];

const EVALUATIONS_PER_STEP: Record<DitSolver, number> = { rk4: 4, midpoint: 2, euler: 1 };

/** DiT evaluations (each of both guidance branches) one `sample` spends over `steps` time points. */
export function solverEvaluations(solver: DitSolver, steps: number): number {
  return EVALUATIONS_PER_STEP[solver] * (steps - 1);
}

export interface SampleOptions {
  /** ODE solver. Default rk4, the reference's. */
  solver?: DitSolver;
  /** Points of the time grid (the reference's num_steps); steps − 1 solver steps. Default 10. */
  steps?: number;
  /** v = v_cond + g·(v_cond − v_uncond). Default 0.5. */
  guidanceScale?: number;
  /** Sway warp of the time grid. Default −1. */
  swayCoefficient?: number;
  signal?: AbortSignal;
}

/** The sampling options with their defaults filled in; BAD_INPUT on a value `sample` cannot use. */
export function resolveSampleOptions(options: SampleOptions): Required<Omit<SampleOptions, 'signal'>> {
  const solver = options.solver ?? 'rk4';
  const steps = options.steps ?? 10;
  const guidanceScale = options.guidanceScale ?? 0.5;
  const swayCoefficient = options.swayCoefficient ?? -1;
  if (!DIT_SOLVERS.includes(solver)) throw new OmniError('BAD_INPUT', `solver must be one of ${DIT_SOLVERS.join(', ')}, got ${String(solver)}`);
  if (!Number.isSafeInteger(steps) || steps < 2) throw new OmniError('BAD_INPUT', `steps must be an integer ≥ 2 (time points), got ${String(steps)}`);
  if (!(Number.isFinite(guidanceScale) && guidanceScale >= 0)) throw new OmniError('BAD_INPUT', `guidanceScale must be a finite number ≥ 0, got ${String(guidanceScale)}`);
  if (!Number.isFinite(swayCoefficient)) throw new OmniError('BAD_INPUT', `swayCoefficient must be finite, got ${String(swayCoefficient)}`);
  return { solver, steps, guidanceScale, swayCoefficient };
}

/** Where `forward` lets a caller look (golden checks): each gets the tensor at that point. */
export type DitProbe = (point: 'timeEmbedding' | 'inputEmbedding' | `block${number}`, value: Tensor) => void | Promise<void>;

/**
 * Every buffer of one window of T mel frames (rows 2T with both branches interleaved), allocated
 * once: the ODE's DiT evaluations (36 for the reference) allocate nothing but a 1-row time sinusoid each.
 */
export class DitRun {
  readonly frames: number;
  /** Frame of each row (row 2t + b → t): rotary positions [1, 2T] and the gather that doubles x. */
  readonly frameOfRow: Tensor;
  /** Codec embedding of each row [2T, emb_dim]: codes of the window on branch 0, id 0 on branch 1. */
  readonly codeEmbed: Tensor;
  /** The input projection's code, speaker, cond and bias part [2T, hidden]: constant during the ODE. */
  readonly inputConstant: Tensor;
  readonly xRows: Tensor; // [2T, mel]
  readonly h: Tensor; // [2T, hidden] residual stream, ping-ponged with hAlt
  readonly hAlt: Tensor;
  readonly normed: Tensor; // [2T, hidden]
  readonly q: Tensor; // [2T, inner]
  readonly k: Tensor;
  readonly v: Tensor;
  readonly qRows: Tensor; // views [2T, heads, headDim] (rotary)
  readonly kRows: Tensor;
  readonly qHeads: Tensor; // views [T, 2·heads, headDim] (attention: branch-major heads)
  readonly kHeads: Tensor;
  readonly vHeads: Tensor;
  readonly attended: Tensor; // [T, 2·heads, headDim]
  readonly attendedRows: Tensor; // view [2T, inner]
  readonly projected: Tensor; // [2T, hidden] to_out / ff output
  readonly gated: Tensor;
  readonly ff: Tensor; // [2T, hidden·ff_mult]
  readonly ffAct: Tensor;
  readonly timeHidden: Tensor; // [1, hidden] inside the time MLP
  readonly timeEmbedding: Tensor; // [1, hidden]
  readonly timeSilu: Tensor; // SiLU of timeHidden, then of timeEmbedding
  readonly shift: Tensor; // [1, hidden] modulation chunks of the current sub-layer
  readonly scale: Tensor;
  readonly gate: Tensor;
  readonly gateRow: Tensor; // view [hidden]
  /** proj_out of both branches [2T, mel], row 2t + b. */
  readonly branches: Tensor;
  readonly weighted: Tensor; // [2T, mel] guidance weights applied
  // ODE state [T, mel]
  readonly y: Tensor;
  readonly yNext: Tensor;
  readonly probe: Tensor;
  readonly slopes: readonly [Tensor, Tensor, Tensor, Tensor];
  readonly termA: Tensor;
  readonly termB: Tensor;
  readonly scaled: Tensor;
  readonly #owned: Tensor[];

  constructor(readonly backend: Backend, config: DitConfig, frames: number) {
    const { hidden, heads, headDim, melDim, embDim, ffMult } = config;
    const rows = 2 * frames;
    const inner = heads * headDim;
    const owned: Tensor[] = [];
    const e = (shape: number[]) => {
      const t = backend.empty(shape);
      owned.push(t);
      return t;
    };
    this.frames = frames;
    this.frameOfRow = backend.tensor(Int32Array.from({ length: rows }, (_, r) => r >> 1), [1, rows]);
    owned.push(this.frameOfRow);
    this.codeEmbed = e([rows, embDim]);
    this.inputConstant = e([rows, hidden]);
    this.xRows = e([rows, melDim]);
    this.h = e([rows, hidden]);
    this.hAlt = e([rows, hidden]);
    this.normed = e([rows, hidden]);
    this.q = e([rows, inner]);
    this.k = e([rows, inner]);
    this.v = e([rows, inner]);
    this.qRows = backend.reshape(this.q, [rows, heads, headDim]);
    this.kRows = backend.reshape(this.k, [rows, heads, headDim]);
    this.qHeads = backend.reshape(this.q, [frames, 2 * heads, headDim]);
    this.kHeads = backend.reshape(this.k, [frames, 2 * heads, headDim]);
    this.vHeads = backend.reshape(this.v, [frames, 2 * heads, headDim]);
    this.attended = e([frames, 2 * heads, headDim]);
    this.attendedRows = backend.reshape(this.attended, [rows, inner]);
    this.projected = e([rows, hidden]);
    this.gated = e([rows, hidden]);
    this.ff = e([rows, hidden * ffMult]);
    this.ffAct = e([rows, hidden * ffMult]);
    this.timeHidden = e([1, hidden]);
    this.timeEmbedding = e([1, hidden]);
    this.timeSilu = e([1, hidden]);
    this.shift = e([1, hidden]);
    this.scale = e([1, hidden]);
    this.gate = e([1, hidden]);
    this.gateRow = backend.reshape(this.gate, [hidden]);
    this.branches = e([rows, melDim]);
    this.weighted = e([rows, melDim]);
    this.y = e([frames, melDim]);
    this.yNext = e([frames, melDim]);
    this.probe = e([frames, melDim]);
    this.slopes = [e([frames, melDim]), e([frames, melDim]), e([frames, melDim]), e([frames, melDim])];
    this.termA = e([frames, melDim]);
    this.termB = e([frames, melDim]);
    this.scaled = e([frames, melDim]);
    this.#owned = owned;
  }

  dispose(): void {
    release(this.backend, this.#owned);
  }
}

export interface DitLoadOptions {
  /** Matrix weights' precision (default f32: the reference runs token2wav in f32, §8.3); biases stay f32. */
  format?: WeightFormat;
}

export class Dit {
  readonly rope: RopeSpec;
  readonly speakerEncoder: SpeakerEncoder;
  readonly sinusoidWidth: number;
  #disposed = false;

  private constructor(readonly backend: Backend, readonly config: DitConfig, readonly weights: DitWeights, speakerEncoder: SpeakerEncoder) {
    this.speakerEncoder = speakerEncoder;
    this.sinusoidWidth = weights.timeMlp1.w.cols;
    // Interleaved pairs (2j, 2j + 1), base rope_theta, head 0 only: a training artefact the weights expect (§8.2 step 5, §10.2).
    const half = config.headDim / 2;
    const invFreq = Float32Array.from({ length: half }, (_, j) => 1 / config.ropeTheta ** ((2 * j) / config.headDim));
    this.rope = { invFreq, stream: new Int32Array(half), style: 'interleaved', heads: 1 };
  }

  /** Loads the DiT and its speaker encoder from a checkpoint with the config parsed from its config.json. */
  static async load(backend: Backend, source: WeightSource, config: DitConfig, options: DitLoadOptions = {}): Promise<Dit> {
    if (!config?.ecapa || !Number.isSafeInteger(config.hidden)) {
      throw new OmniError('BAD_INPUT', 'Dit.load needs the typed DiT config (parseOmniConfig(...).token2wav.dit)');
    }
    const loader = new WeightLoader(backend, source, options.format ?? 'f32');
    try {
      const ecapa = await loadEcapaWeights(loader, config);
      const weights = await loadDitWeights(loader, config);
      return new Dit(backend, config, weights, new SpeakerEncoder(backend, config.ecapa, ecapa));
    } catch (e) {
      release(backend, loader.held);
      throw e;
    }
  }

  /** Mel frames per codec code. */
  get repeats(): number {
    return this.config.repeats;
  }

  /**
   * Runs the speaker encoder on the reference mel [T_ref, mel] (row-major) and on zeros, and the
   * speaker part of the input projection for both branches (cond on branch 0, zeros on branch 1).
   */
  condition(cond: Float32Array, refMel: Float32Array): DitCondition {
    this.#checkLive();
    const b = this.backend;
    const { melDim, hidden, ecapa } = this.config;
    if (!(cond instanceof Float32Array) || !(refMel instanceof Float32Array)) throw new OmniError('BAD_INPUT', 'condition takes the cond and the reference mel as Float32Arrays');
    const frames = refMel.length / melDim;
    if (cond.length !== ecapa.condDim) throw new OmniError('BAD_INPUT', `the speaker cond has ${cond.length} values; this DiT takes enc_emb_dim ${ecapa.condDim}`);
    if (!Number.isInteger(frames) || frames < minReferenceFrames(ecapa)) {
      throw new OmniError('BAD_INPUT', `the reference mel has ${refMel.length} values; it must be [T_ref ≥ ${minReferenceFrames(ecapa)}, ${melDim}]`);
    }
    const temps: Tensor[] = [];
    const temp = (t: Tensor) => (temps.push(t), t);
    const kept: Tensor[] = [];
    try {
      const speaker = [refMel, new Float32Array(refMel.length)].map((mel) => {
        const encoded = this.speakerEncoder.encode(temp(b.tensor(mel, [frames, melDim])));
        kept.push(encoded);
        return encoded;
      });
      const rows = b.empty([2 * hidden]);
      kept.push(rows);
      [cond, new Float32Array(cond.length)].forEach((c, branch) => {
        const w = this.weights;
        const row = temp(b.add(temp(b.linear(speaker[branch], w.inputSpeaker)), temp(b.linear(temp(b.tensor(c, [1, c.length])), w.inputCond.w, w.inputCond.b))));
        b.copy(row, rows, 0, branch * hidden, hidden);
      });
      return new DitCondition(b, [speaker[0], speaker[1]], rows);
    } catch (e) {
      release(b, kept);
      throw e;
    } finally {
      release(b, temps);
    }
  }

  /** The buffers of a window of `frames` mel frames (reusable for every window of that length). */
  createRun(frames: number): DitRun {
    this.#checkLive();
    if (!Number.isSafeInteger(frames) || frames < 1) throw new OmniError('BAD_INPUT', `a DiT run needs ≥ 1 mel frames, got ${String(frames)}`);
    return new DitRun(this.backend, this.config, frames);
  }

  /**
   * Sets the window's codes (each ≤ num_embeds, codes·repeats = the run's frames): embeds them,
   * repeated per frame (id 0 on the unconditional branch, §8.3), and sums the parts of the input
   * projection that stay fixed during the ODE.
   */
  prepare(run: DitRun, condition: DitCondition, codes: Int32Array): void {
    this.#checkRun(run);
    if (!(condition instanceof DitCondition)) throw new OmniError('BAD_INPUT', 'prepare needs the DitCondition from condition()');
    const b = this.backend;
    const { repeats, hidden, numEmbeds } = this.config;
    if (!(codes instanceof Int32Array) || codes.length * repeats !== run.frames) {
      throw new OmniError('BAD_INPUT', `a run of ${run.frames} frames takes an Int32Array of ${run.frames / repeats} codes`);
    }
    for (let i = 0; i < codes.length; i++) {
      if (!(codes[i] >= 0 && codes[i] <= numEmbeds)) throw new OmniError('BAD_INPUT', `code ${codes[i]} at ${i} is outside the DiT's table [0, ${numEmbeds}]`);
    }
    const ids = new Int32Array(2 * run.frames);
    for (let t = 0; t < run.frames; t++) ids[2 * t] = codes[Math.floor(t / repeats)];
    b.embedding(this.weights.codecEmbed, ids, run.codeEmbed);
    b.linear(run.codeEmbed, this.weights.inputCode, null, run.projected);
    // Viewed as [T, 2·hidden], each frame pair gets [speaker row of branch 0, of branch 1].
    b.add(b.reshape(run.projected, [run.frames, 2 * hidden]), condition.speakerRows, b.reshape(run.inputConstant, [run.frames, 2 * hidden]));
  }

  /** One DiT evaluation (§8.2) of both branches at time t on x [T, mel] → `run.branches` [2T, mel]. */
  async forward(run: DitRun, x: Tensor, time: number, probe?: DitProbe): Promise<void> {
    this.#checkRun(run);
    const { melDim } = this.config;
    if (!x || x.dtype !== 'f32' || x.shape.length !== 2 || x.shape[0] !== run.frames || x.shape[1] !== melDim) {
      throw new OmniError('SHAPE_MISMATCH', `the DiT's x must be f32 [${run.frames}, ${melDim}] for this run, got ${x?.dtype} [${x?.shape?.join(', ')}]`);
    }
    if (!Number.isFinite(time)) throw new OmniError('BAD_INPUT', `the ODE time must be finite, got ${String(time)}`);
    const b = this.backend;
    const w = this.weights;
    const { blockSize } = this.config;
    // Time embedding: sinusoid → Linear → SiLU → Linear; every modulation reads SiLU of it.
    const sinusoid = b.tensor(timeSinusoid(time, this.sinusoidWidth), [1, this.sinusoidWidth]);
    try {
      b.linear(sinusoid, w.timeMlp1.w, w.timeMlp1.b, run.timeHidden);
    } finally {
      b.dispose(sinusoid);
    }
    b.unary(run.timeHidden, { kind: 'silu' }, run.timeSilu);
    b.linear(run.timeSilu, w.timeMlp2.w, w.timeMlp2.b, run.timeEmbedding);
    await probe?.('timeEmbedding', run.timeEmbedding);
    b.unary(run.timeEmbedding, { kind: 'silu' }, run.timeSilu);
    // Input embedding: the noisy mel's block of the projection, plus the part fixed for the window.
    b.gatherRows(x, run.frameOfRow, run.xRows);
    b.linear(run.xRows, w.inputMel, null, run.projected);
    b.add(run.projected, run.inputConstant, run.h);
    await probe?.('inputEmbedding', run.h);
    let h = run.h;
    const residual = (delta: Tensor) => {
      const next = h === run.h ? run.hAlt : run.h;
      b.mul(delta, run.gateRow, run.gated);
      b.add(h, run.gated, next);
      h = next;
    };
    for (let l = 0; l < w.blocks.length; l++) {
      const block = w.blocks[l];
      // Attention sub-layer: LN(h)·(1 + scale) + shift is LayerNorm with those rows as its affine.
      this.#modulation(run, block.shiftMsa, block.scaleMsa, block.gateMsa);
      b.layernorm(h, run.scale, run.shift, NORM_EPS, run.normed);
      b.linear(run.normed, block.q.w, block.q.b, run.q);
      b.linear(run.normed, block.k.w, block.k.b, run.k);
      b.linear(run.normed, block.v.w, block.v.b, run.v);
      b.rotary(run.qRows, run.frameOfRow, this.rope, run.qRows);
      b.rotary(run.kRows, run.frameOfRow, this.rope, run.kRows);
      b.attention(run.qHeads, run.kHeads, run.vHeads, { mask: { kind: 'blockWindow', blockSize, back: block.back, ahead: block.ahead } }, run.attended);
      b.linear(run.attendedRows, block.out.w, block.out.b, run.projected);
      residual(run.projected);
      // Feed-forward sub-layer.
      this.#modulation(run, block.shiftMlp, block.scaleMlp, block.gateMlp);
      b.layernorm(h, run.scale, run.shift, NORM_EPS, run.normed);
      b.linear(run.normed, block.ff1.w, block.ff1.b, run.ff);
      b.gelu(run.ff, 'tanh', run.ffAct);
      b.linear(run.ffAct, block.ff2.w, block.ff2.b, run.projected);
      residual(run.projected);
      await probe?.(`block${l}`, h);
    }
    b.linear(run.timeSilu, w.finalScale.w, w.finalScale.b, run.scale);
    b.linear(run.timeSilu, w.finalShift.w, w.finalShift.b, run.shift);
    b.layernorm(h, run.scale, run.shift, NORM_EPS, run.normed);
    b.linear(run.normed, w.projOut.w, w.projOut.b, run.branches);
  }

  /**
   * Integrates the ODE (§8.3) from `noise` [T, mel] (row-major) over the sway-warped grid with
   * the chosen solver (RK4's 3/8 rule by default), each slope a guided pair of branches.
   * Returns `run.y`, the log-mel [T, mel].
   */
  async sample(run: DitRun, noise: Float32Array, options: SampleOptions = {}): Promise<Tensor> {
    this.#checkRun(run);
    const b = this.backend;
    const { melDim } = this.config;
    const { solver, steps, guidanceScale: guidance, swayCoefficient: sway } = resolveSampleOptions(options);
    if (!(noise instanceof Float32Array) || noise.length !== run.frames * melDim) {
      throw new OmniError('BAD_INPUT', `the initial noise must be a Float32Array of ${run.frames} × ${melDim} values`);
    }
    // v = (1 + g)·v_cond − g·v_uncond: each frame's row pair weighted, then averaged (×2 undone by the mean).
    const weightRow = new Float32Array(2 * melDim);
    weightRow.fill(2 * (1 + guidance), 0, melDim).fill(-2 * guidance, melDim);
    const weights = b.tensor(weightRow, [2 * melDim]);
    const upload = b.tensor(noise, [run.frames, melDim]);
    try {
      b.copy(upload, run.y, 0, 0, noise.length);
      const [k1, k2, k3, k4] = run.slopes;
      const slope = async (time: number, x: Tensor, into: Tensor) => {
        await this.forward(run, x, time);
        b.mul(b.reshape(run.branches, [run.frames, 2 * melDim]), weights, b.reshape(run.weighted, [run.frames, 2 * melDim]));
        b.avgPoolRows(run.weighted, 2, into);
      };
      /** out = y + c·k */
      const axpy = (out: Tensor, y: Tensor, c: number, k: Tensor) => {
        b.unary(k, { kind: 'affine', scale: c, shift: 0 }, run.scaled);
        b.add(y, run.scaled, out);
      };
      const times = swayTimes(steps, sway);
      let y = run.y;
      for (let i = 0; i + 1 < times.length; i++) {
        if (options.signal?.aborted) throw new OmniError('ABORTED', `the ODE was aborted at step ${i} of ${times.length - 1}`);
        const [t0, t1] = [times[i], times[i + 1]];
        const dt = Math.fround(t1 - t0);
        const next = y === run.y ? run.yNext : run.y;
        await slope(t0, y, k1);
        if (solver === 'euler') {
          axpy(next, y, dt, k1);
        } else if (solver === 'midpoint') {
          const half = Math.fround(dt / 2);
          axpy(run.probe, y, half, k1);
          await slope(Math.fround(t0 + half), run.probe, k2);
          axpy(next, y, dt, k2);
        } else {
          const third = Math.fround(dt / 3);
          axpy(run.probe, y, third, k1);
          await slope(Math.fround(t0 + third), run.probe, k2);
          axpy(run.termA, y, -third, k1);
          axpy(run.probe, run.termA, dt, k2);
          await slope(Math.fround(t0 + Math.fround(dt * (2 / 3))), run.probe, k3);
          axpy(run.termA, y, dt, k1);
          axpy(run.termB, run.termA, -dt, k2);
          axpy(run.probe, run.termB, dt, k3);
          await slope(t1, run.probe, k4);
          // y + Δ·(k1 + 3k2 + 3k3 + k4)/8
          axpy(run.termA, y, dt / 8, k1);
          axpy(run.termB, run.termA, (3 * dt) / 8, k2);
          axpy(run.termA, run.termB, (3 * dt) / 8, k3);
          axpy(next, run.termA, dt / 8, k4);
        }
        y = next;
      }
      if (y !== run.y) b.copy(y, run.y, 0, 0, y.size);
      return run.y;
    } finally {
      b.dispose(weights);
      b.dispose(upload);
    }
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    release(this.backend, this.weights.held);
  }

  /** shift, 1 + scale and gate rows of one sub-layer from SiLU(time embedding). */
  #modulation(run: DitRun, shift: Linear, scale: Linear, gate: Linear): void {
    const b = this.backend;
    b.linear(run.timeSilu, shift.w, shift.b, run.shift);
    b.linear(run.timeSilu, scale.w, scale.b, run.scale);
    b.linear(run.timeSilu, gate.w, gate.b, run.gate);
  }

  #checkLive(): void {
    if (this.#disposed) throw new OmniError('BAD_INPUT', 'this DiT was disposed');
  }

  #checkRun(run: DitRun): void {
    this.#checkLive();
    if (!(run instanceof DitRun) || run.backend !== this.backend) throw new OmniError('BAD_INPUT', 'a DitRun from this DiT\'s createRun is required');
  }
}
