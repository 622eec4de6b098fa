// Builds every kernel artifact the packages load: WGSL sources embedded as a module,
// and the emscripten SIMD wasm modules (single-threaded and pthread variants).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
for (const step of ['build-wgsl.mjs', 'build-wasm.mjs']) {
  execFileSync(process.execPath, [here + step], { stdio: 'inherit' });
}
