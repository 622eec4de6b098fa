/**
 * The wasm backend's flags, shared by run-case, run and speak: its threads, the q8/q4 GEMV's
 * activation rounding and the kernel build (createWasmBackend's options). Unset flags leave
 * the backend's defaults; with --device webgpu they are refused, as they would change nothing.
 */
import { OmniError, type QuantizedActivations, type WasmBackendOptions, type WasmSimd } from '@omniweb/core';

export const WASM_FLAGS = { threads: 'value', 'quantized-activations': 'value', 'wasm-simd': 'value' } as const;

export const WASM_USAGE = '[--threads N] [--quantized-activations auto|int16|int8|exact] [--wasm-simd auto|relaxed|baseline]';

const ACTIVATIONS: readonly QuantizedActivations[] = ['auto', 'int16', 'int8', 'exact'];
const BUILDS: readonly WasmSimd[] = ['auto', 'relaxed', 'baseline'];

/** The wasm options from parsed flag values; `command` prefixes the error message. */
export function wasmOptions(command: string, values: ReadonlyMap<string, string>, device: string): WasmBackendOptions {
  const bad = (message: string) => new OmniError('BAD_INPUT', `${command}: ${message} (omniweb help shows every flag)`);
  const given = Object.keys(WASM_FLAGS).filter((flag) => values.has(flag));
  if (given.length === 0) return {};
  if (device !== 'wasm') throw bad(`${given.map((f) => `--${f}`).join(', ')} set${given.length === 1 ? 's' : ''} the wasm backend; with --device ${device} ${given.length === 1 ? 'it changes' : 'they change'} nothing`);
  const options: WasmBackendOptions = {};
  const threads = values.get('threads');
  if (threads !== undefined) {
    if (!/^\d+$/.test(threads) || Number(threads) < 1) throw bad(`--threads ${threads} is not a positive integer`);
    options.threads = Number(threads);
  }
  const pick = <T extends string>(flag: string, allowed: readonly T[]): T | undefined => {
    const v = values.get(flag);
    if (v !== undefined && !(allowed as readonly string[]).includes(v)) throw bad(`--${flag} ${v} is not one of ${allowed.join(', ')}`);
    return v as T | undefined;
  };
  const activations = pick('quantized-activations', ACTIVATIONS);
  if (activations) options.quantizedActivations = activations;
  const simd = pick('wasm-simd', BUILDS);
  if (simd) options.simd = simd;
  return options;
}
