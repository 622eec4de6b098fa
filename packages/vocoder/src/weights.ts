/**
 * How the token2wav models read their tensors: each shape is checked against the config before
 * any data is read; values arrive as f32 and are rearranged on the host where the graph wants
 * another layout (a concat split into per-input column blocks, a transposed conv made
 * polyphase), then converted to the matrix format and uploaded. Everything uploaded is held in
 * one list, so a model frees all it owns at once. `Scratch` does the same for one pass's temporaries.
 */
import {
  checkWeightFormat, checkWeightShape, quantize, toF16Array,
  type Backend, type HostMatrix, type Tensor, type Weight, type WeightFormat, type WeightSource as ModelWeightSource,
} from '@omniweb/core';

/**
 * What the loaders read: a `Checkpoint` (core weights) fits. No `readMatrix`: values are
 * rearranged on the host before they are converted, so they are always read as f32.
 */
export type WeightSource = Omit<ModelWeightSource, 'readMatrix'>;

export class WeightLoader {
  /** Every tensor and weight uploaded, in order. */
  readonly held: (Tensor | Weight)[] = [];

  constructor(readonly backend: Backend, readonly source: WeightSource, readonly format: WeightFormat) {
    checkWeightFormat(format);
  }

  /** The tensor's f32 values, after checking its shape against what the config implies. */
  async values(name: string, shape: readonly number[], because: string): Promise<Float32Array> {
    checkWeightShape(this.source, name, shape, because);
    return this.source.readF32(name);
  }

  /** A 1-D parameter (bias, norm, SnakeBeta α/β) as an f32 tensor. */
  async vector(name: string, length: number, because: string): Promise<Tensor> {
    return this.tensor(await this.values(name, [length], because), [length]);
  }

  /** Host values as an f32 tensor held by the model. */
  tensor(values: Float32Array, shape: readonly number[]): Tensor {
    return this.#hold(this.backend.tensor(values, shape));
  }

  /** Row-major [rows, cols] f32 values as a matrix weight in the loader's format. */
  matrix(values: Float32Array, rows: number, cols: number): Weight {
    return this.#hold(this.backend.weight(hostMatrix(values, rows, cols, this.format)));
  }

  #hold<T extends Tensor | Weight>(t: T): T {
    this.held.push(t);
    return t;
  }
}

function hostMatrix(values: Float32Array, rows: number, cols: number, format: WeightFormat): HostMatrix {
  switch (format) {
    case 'f32': return { format, rows, cols, data: values };
    case 'f16': return { format, rows, cols, data: toF16Array(values) };
    default: return quantize(values, rows, cols, format);
  }
}

/** Columns [from, from + count) of a row-major [rows, cols] matrix: one input's block of a weight over a concat. */
export function columns(values: Float32Array, rows: number, cols: number, from: number, count: number): Float32Array {
  const out = new Float32Array(rows * count);
  for (let r = 0; r < rows; r++) out.set(values.subarray(r * cols + from, r * cols + from + count), r * count);
  return out;
}

/** Frees what a model holds; views (reshape) share storage with their source and are not listed. */
export function release(backend: Backend, held: Iterable<Tensor | Weight>): void {
  for (const t of new Set(held)) backend.dispose(t);
}

/**
 * Tensors made during one pass (ECAPA, BigVGAN), freed together at its end: those passes run
 * once per utterance or chunk, unlike the DiT whose buffers live in a run state.
 */
export class Scratch {
  readonly #made: Tensor[] = [];

  constructor(readonly backend: Backend) {}

  /** Records `t` to be freed by `free()`, and returns it. */
  temp(t: Tensor): Tensor {
    this.#made.push(t);
    return t;
  }

  /** Frees every recorded tensor except `kept`. */
  free(...kept: Tensor[]): void {
    for (const t of this.#made) if (!kept.includes(t)) this.backend.dispose(t);
    this.#made.length = 0;
  }
}
