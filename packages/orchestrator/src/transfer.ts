/**
 * Large arrays cross a worker boundary as transferables, never copied. A stage marks what it
 * returns (and the driver what it sends) with `handOver`; in this thread the mark is inert.
 */
import { transfer } from 'comlink';

/** The array itself when it spans its whole buffer; else a copy that does (a view into wasm memory cannot move). */
export function owned<T extends Float32Array | Int32Array>(array: T): T {
  const whole = array.byteOffset === 0 && array.byteLength === array.buffer.byteLength && array.buffer instanceof ArrayBuffer;
  return whole ? array : (array.slice() as T);
}

/** Marks `value` to travel with the buffers of `arrays` moved rather than copied. */
export function handOver<T>(value: T, arrays: readonly (Float32Array | Int32Array | undefined)[]): T {
  const buffers = new Set<ArrayBuffer>();
  for (const a of arrays) if (a) buffers.add(a.buffer as ArrayBuffer);
  return transfer(value, [...buffers]);
}
