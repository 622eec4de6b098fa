// Builds the roofline probe (bench only): a pthread SIMD module for Node and browsers.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const out = `${here}../.build`;
mkdirSync(out, { recursive: true });
// The pthread worker emscripten writes is CommonJS; bench/ is an ES-module package.
writeFileSync(`${out}/package.json`, '{"type":"commonjs"}\n');
const common = [
  `${here}roofline.c`, '-O3', '-msimd128', '-pthread', '-sPTHREAD_POOL_SIZE=4', '-sMODULARIZE', '-sEXPORT_ES6',
  '-sINITIAL_MEMORY=1200MB',
  // Keep emscripten from taking over the process's error handlers (it prints its whole glue).
  '-sNODEJS_CATCH_EXIT=0', '-sNODEJS_CATCH_REJECTION=0',
  '-sEXPORTED_FUNCTIONS=_roofline_alloc,_roofline_free,_roofline_read,_roofline_fma',
];
const env = { ...process.env, NODE_PATH: process.env.NODE_PATH ?? '/usr/share/nodejs' };
execFileSync('emcc', [...common, '-sENVIRONMENT=node,worker', '--extern-pre-js', `${here}node-shim.js`, '-o', `${out}/roofline-node.mjs`], { env, stdio: 'inherit' });
execFileSync('emcc', [...common, '-sENVIRONMENT=web,worker', '-o', `${out}/roofline-web.mjs`], { env, stdio: 'inherit' });
