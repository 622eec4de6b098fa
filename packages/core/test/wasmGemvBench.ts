// GEMV bandwidth of the wasm backend (not a test): `npx tsx packages/core/test/wasmGemvBench.ts`.
// Prints GB/s of weight bytes streamed per decode-shaped linear (M = 1) for every format,
// at 1 and 2 threads. Figures on shared cores vary run to run: compare within one run.
import { quantize, toF16Array, type HostMatrix, type WeightFormat } from '../src/index.js';
import { createWasmBackend } from '../src/wasm/index.js';

const SHAPES: readonly [rows: number, cols: number][] = [[4096, 4096], [4864, 896], [896, 4864]];
const FORMATS: readonly WeightFormat[] = ['f32', 'f16', 'q8', 'q4'];
const MIN_SECONDS = 0.5;

function host(format: WeightFormat, rows: number, cols: number): HostMatrix {
  const values = new Float32Array(rows * cols);
  for (let i = 0; i < values.length; i++) values[i] = Math.sin(i * 0.7311) * 0.1;
  if (format === 'f32') return { format, rows, cols, data: values };
  if (format === 'f16') return { format, rows, cols, data: toF16Array(values) };
  return quantize(values, rows, cols, format, 'f16');
}

for (const threads of [1, 2]) {
  const backend = await createWasmBackend({ threads });
  const variants = (process.env.VARIANTS ?? '1').split(',').map(Number);
  for (const [rows, cols] of SHAPES) {
    const x = backend.tensor(Float32Array.from({ length: cols }, (_, i) => Math.cos(i)), [1, cols]);
    const y = backend.empty([1, rows]);
    for (const format of FORMATS) {
      const w = backend.weight(host(format, rows, cols));
      for (const variant of format === 'q8' || format === 'q4' ? variants : [1]) {
        (backend as unknown as { kernels: { _omni_set_integer_dot?(on: number): void } }).kernels._omni_set_integer_dot?.(variant);
        for (let i = 0; i < 3; i++) backend.linear(x, w, null, y);
        let calls = 0;
        const start = performance.now();
        while (performance.now() - start < MIN_SECONDS * 1000) {
          for (let i = 0; i < 10; i++) backend.linear(x, w, null, y);
          calls += 10;
        }
        const seconds = (performance.now() - start) / 1000 / calls;
        const label = format === 'q8' || format === 'q4' ? `${format}${variant ? ' int-dot' : ' f32-dequant'}` : format;
        console.log(`${threads} thread(s) ${rows}×${cols} ${label.padEnd(15)} ${(w.byteSize / seconds / 1e9).toFixed(1).padStart(5)} GB/s  ${(seconds * 1e6).toFixed(0).padStart(6)} µs`);
      }
      backend.dispose(w);
    }
  }
  backend.destroy();
}
