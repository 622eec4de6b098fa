// Builds the Thinker benchmark's compute-peak probe (peak.c) for Node and for pages, next to
// the roofline probe in bench/.build (bench only, never shipped).
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { RELAXED_COMPILE_FLAGS, RELAXED_EMCC_ENV, RELAXED_LINK_FLAGS } from '../../scripts/relaxedSimd.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const out = `${here}../.build`;
mkdirSync(out, { recursive: true });
// The pthread worker emscripten writes is CommonJS; bench/ is an ES-module package.
writeFileSync(`${out}/package.json`, '{"type":"commonjs"}\n');
const common = [
  `${here}peak.c`, '-O3', '-msimd128', '-pthread', '-sPTHREAD_POOL_SIZE=4', '-sMODULARIZE', '-sEXPORT_ES6',
  '-sEXPORTED_FUNCTIONS=_peak_f32,_peak_dot',
];
const env = { ...process.env, NODE_PATH: process.env.NODE_PATH ?? '/usr/share/nodejs' };
execFileSync('emcc', [...common, '-sENVIRONMENT=node,worker', '--extern-pre-js', `${here}../roofline/node-shim.js`, '-o', `${out}/thinker-peak-node.mjs`], { env, stdio: 'inherit' });
execFileSync('emcc', [...common, '-sENVIRONMENT=web,worker', '-o', `${out}/thinker-peak-web.mjs`], { env, stdio: 'inherit' });
// The relaxed-SIMD peak, for engines whose wasm backend runs the relaxed build (Chromium,
// Node ≥ 22), built as that build is (scripts/relaxedSimd.mjs).
const relaxedEnv = { ...env, ...RELAXED_EMCC_ENV };
const object = `${out}/thinker-peak-relaxed.o`;
execFileSync('emcc', [`${here}peak.c`, '-O3', '-msimd128', '-pthread', ...RELAXED_COMPILE_FLAGS, '-c', '-o', object], { env: relaxedEnv, stdio: 'inherit' });
const relaxedLink = [
  object, '-msimd128', '-pthread', '-sPTHREAD_POOL_SIZE=4', '-sMODULARIZE', '-sEXPORT_ES6', ...RELAXED_LINK_FLAGS,
  '-sEXPORTED_FUNCTIONS=_peak_f32,_peak_dot,_peak_relaxed_dot',
];
execFileSync('emcc', [...relaxedLink, '-sENVIRONMENT=node,worker', '--extern-pre-js', `${here}../roofline/node-shim.js`, '-o', `${out}/thinker-peak-node-relaxed.mjs`], { env: relaxedEnv, stdio: 'inherit' });
execFileSync('emcc', [...relaxedLink, '-sENVIRONMENT=web,worker', '-o', `${out}/thinker-peak-web-relaxed.mjs`], { env: relaxedEnv, stdio: 'inherit' });
