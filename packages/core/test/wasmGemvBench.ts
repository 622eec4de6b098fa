// GEMV bandwidth of the wasm backend (not a test): `npx tsx packages/core/test/wasmGemvBench.ts`.
// Prints GB/s of weight bytes streamed per decode-shaped linear (M = 1) for every format,
// at 1 and 2 threads: the best of many short trials, since other work on shared cores
// only ever slows a trial down.
import { quantize, toF16Array, type HostMatrix, type WeightFormat } from '../src/index.js';
import { createWasmBackend } from '../src/wasm/index.js';

const SHAPES: readonly [rows: number, cols: number][] = [[4096, 4096], [4864, 896], [896, 4864]];
const FORMATS: readonly WeightFormat[] = ['f32', 'f16', 'q8', 'q4'];
const TRIALS = 15;
const TRIAL_MS = 40;

function host(format: WeightFormat, rows: number, cols: number): HostMatrix {
  const values = new Float32Array(rows * cols);
  for (let i = 0; i < values.length; i++) values[i] = Math.sin(i * 0.7311) * 0.1;
  if (format === 'f32') return { format, rows, cols, data: values };
  if (format === 'f16') return { format, rows, cols, data: toF16Array(values) };
  return quantize(values, rows, cols, format, 'f16');
}

for (const threads of [1, 2]) {
  const backend = await createWasmBackend({ threads });
  for (const [rows, cols] of SHAPES) {
    const x = backend.tensor(Float32Array.from({ length: cols }, (_, i) => Math.cos(i)), [1, cols]);
    const y = backend.empty([1, rows]);
    for (const format of FORMATS) {
      const w = backend.weight(host(format, rows, cols));
      for (let i = 0; i < 3; i++) backend.linear(x, w, null, y);
      let best = Infinity;
      for (let trial = 0; trial < TRIALS; trial++) {
        let calls = 0;
        const start = performance.now();
        while (performance.now() - start < TRIAL_MS) {
          backend.linear(x, w, null, y);
          calls++;
        }
        best = Math.min(best, (performance.now() - start) / 1000 / calls);
      }
      console.log(`${threads} thread(s) ${rows}×${cols} ${format}  ${(w.byteSize / best / 1e9).toFixed(1).padStart(5)} GB/s  ${(best * 1e6).toFixed(0).padStart(6)} µs`);
      backend.dispose(w);
    }
  }
  backend.destroy();
}
