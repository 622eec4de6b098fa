/**
 * A Thinker weight source over an open checkpoint that keeps each converted host matrix per
 * format, so that several backends (1 and 2 threads, Node or page) upload the same arrays
 * without reading and quantizing the checkpoint again. Browser-safe.
 */
import type { Checkpoint, HostMatrix, WeightFormat } from '@omniweb/core';
import type { WeightSource } from '@omniweb/thinker';

export class CachedSource implements WeightSource {
  readonly #matrices = new Map<string, HostMatrix>();
  constructor(readonly checkpoint: Checkpoint) {}

  has(name: string): boolean { return this.checkpoint.has(name); }
  info(name: string): { shape: readonly number[] } { return this.checkpoint.info(name); }
  readF32(name: string): Promise<Float32Array> { return this.checkpoint.readF32(name); }

  async readMatrix(name: string, format: WeightFormat): Promise<HostMatrix> {
    const key = `${format}:${name}`;
    let m = this.#matrices.get(key);
    if (!m) {
      m = await this.checkpoint.readMatrix(name, format);
      this.#matrices.set(key, m);
    }
    return m;
  }

  /** Drops the converted matrices (before the next format). */
  forget(): void { this.#matrices.clear(); }
}
