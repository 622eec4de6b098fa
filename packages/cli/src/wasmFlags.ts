/**
 * The wasm backend's flags, shared by run-case, run and speak: its threads, the q8/q4 GEMV's
 * activation rounding and the kernel build (createWasmBackend's options). Unset flags leave
 * the backend's defaults; with --device webgpu they are refused, as they would change nothing.
 */
import type { QuantizedActivations, WasmBackendOptions, WasmSimd } from '@omniweb/core';
import { badFlag, flagReader } from './flags.js';

export const WASM_FLAGS = { threads: 'value', 'quantized-activations': 'value', 'wasm-simd': 'value' } as const;

export const WASM_USAGE = '[--threads N] [--quantized-activations auto|int16|int8|exact] [--wasm-simd auto|relaxed|baseline]';

const ACTIVATIONS: readonly QuantizedActivations[] = ['auto', 'int16', 'int8', 'exact'];
const BUILDS: readonly WasmSimd[] = ['auto', 'relaxed', 'baseline'];

/** The wasm options from parsed flag values; `command` prefixes the error message. */
export function wasmOptions(command: string, values: ReadonlyMap<string, string>, device: string): WasmBackendOptions {
  const given = Object.keys(WASM_FLAGS).filter((flag) => values.has(flag));
  if (given.length === 0) return {};
  if (device !== 'wasm') {
    throw badFlag(command, `${given.map((f) => `--${f}`).join(', ')} set${given.length === 1 ? 's' : ''} the wasm backend; with --device ${device} ${given.length === 1 ? 'it changes' : 'they change'} nothing`);
  }
  const { oneOf, positiveInt } = flagReader(command, values);
  const options: WasmBackendOptions = {};
  const threads = positiveInt('threads');
  if (threads !== null) options.threads = threads;
  if (values.has('quantized-activations')) options.quantizedActivations = oneOf('quantized-activations', ACTIVATIONS, 'auto');
  if (values.has('wasm-simd')) options.simd = oneOf('wasm-simd', BUILDS, 'auto');
  return options;
}
