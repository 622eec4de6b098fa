/**
 * Shape-checked weight loading for the model packages: every tensor's shape is checked against
 * what the config implies before its data is read, so a checkpoint that does not match its
 * config.json fails with SHAPE_MISMATCH naming the tensor instead of a wrong result later.
 */
import type { Backend, HostMatrix, Tensor, Weight, WeightFormat } from '../backend.js';
import { OmniError } from '../errors.js';

/**
 * What the model loaders read: a `Checkpoint` from `openCheckpoint` fits. Only `shape` is read
 * from `info`, so a view that renames tensors (the Talker's decoder) need not build a full `TensorInfo`.
 */
export interface WeightSource {
  has(name: string): boolean;
  info(name: string): { shape: readonly number[] };
  readF32(name: string): Promise<Float32Array>;
  readMatrix(name: string, format: WeightFormat): Promise<HostMatrix>;
}

export const WEIGHT_FORMATS: readonly WeightFormat[] = ['f32', 'f16', 'q8', 'q4'];

/** BAD_INPUT unless `format` is a matrix format a backend uploads. */
export function checkWeightFormat(format: WeightFormat): void {
  if (!WEIGHT_FORMATS.includes(format)) throw new OmniError('BAD_INPUT', `weight format ${JSON.stringify(format)}; choose f32, f16, q8 or q4`);
}

/**
 * SHAPE_MISMATCH unless tensor `name` is `shape`. `because` names the config fields the shape
 * comes from and `config` which config that is, so the message says what to fix.
 */
export function checkWeightShape(
  source: Pick<WeightSource, 'info'>, name: string, shape: readonly number[], because: string, config = 'config',
): void {
  const actual = source.info(name).shape;
  if (actual.length !== shape.length || actual.some((d, i) => d !== shape[i])) {
    throw new OmniError('SHAPE_MISMATCH', `${name} is [${actual.join(', ')}], but the ${config} implies [${shape.join(', ')}] (${because})`);
  }
}

export interface ModelWeightsOptions {
  /** Prepended to every name read (`thinker.audio_tower.`); errors show the full name. */
  prefix?: string;
  /** Which config the shapes come from, for errors (`audio config`); default `config`. */
  config?: string;
}

/** Readers of named tensors in `format` (checked here, before anything is read), uploaded to `backend`. */
export function modelWeights(backend: Backend, source: WeightSource, format: WeightFormat, options: ModelWeightsOptions = {}) {
  checkWeightFormat(format);
  const { prefix = '', config } = options;
  return {
    /** A matrix weight in the chosen format; its shape is checked whole (a conv kernel is read as [out, rest]). */
    async matrix(name: string, shape: readonly number[], because: string): Promise<Weight> {
      checkWeightShape(source, prefix + name, shape, because, config);
      return backend.weight(await source.readMatrix(prefix + name, format));
    },
    /** Norm weights and biases stay f32. */
    async vector(name: string, length: number, because: string): Promise<Tensor> {
      checkWeightShape(source, prefix + name, [length], because, config);
      return backend.tensor(await source.readF32(prefix + name), [length]);
    },
  };
}
