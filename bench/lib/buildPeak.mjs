// Builds bench/.build/peak.wasm (bench/lib/peak.c): a standalone SIMD module with no imports.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const out = `${here}../.build`;
mkdirSync(out, { recursive: true });
execFileSync('emcc', [`${here}peak.c`, '-O3', '-msimd128', '--no-entry', '-sSTANDALONE_WASM', '-o', `${out}/peak.wasm`], { stdio: 'inherit' });
