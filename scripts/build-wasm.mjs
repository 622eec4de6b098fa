// Compiles kernels/wasm/*.c with emscripten into packages/core/assets/: a single-threaded
// SIMD module and a -pthread one (a persistent pool, used where shared memory exists), each
// also built with relaxed SIMD for engines that run it (its 8-bit dot product; see linear.c;
// how emcc builds it: relaxedSimd.mjs).
// Both are ES modules that load in Node, browsers and module workers without a bundler
// plugin; packages/core/src/wasmAssets.ts is the only code that knows these file names.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { RELAXED_COMPILE_FLAGS, RELAXED_EMCC_ENV, RELAXED_LINK_FLAGS } from './relaxedSimd.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const sourceDir = `${root}kernels/wasm/`;
// OMNI_WASM_OUT_DIR builds elsewhere (a scratch folder to try kernel changes without
// replacing the modules that running tests load).
const outDir = process.env.OMNI_WASM_OUT_DIR ? `${process.env.OMNI_WASM_OUT_DIR.replace(/\/$/, '')}/` : `${root}packages/core/assets/`;

const sources = readdirSync(sourceDir).filter((f) => f.endsWith('.c')).sort().map((f) => sourceDir + f);
if (sources.length === 0) throw new Error(`build-wasm: no .c files in ${sourceDir}`);
mkdirSync(outDir, { recursive: true });

// Node runs the emscripten glue as an ES module: it still calls require() and reads
// __dirname, so both are defined from import.meta.url (a no-op in browsers).
const shimDir = mkdtempSync(`${tmpdir()}/omni-build-wasm-`);
const nodeShim = `${shimDir}/node-shim.js`;
writeFileSync(nodeShim, [
  "const isNode = typeof process === 'object' && typeof process.versions?.node === 'string';",
  "const { createRequire } = isNode ? await import('node:module') : {};",
  'const require = isNode ? createRequire(import.meta.url) : undefined;',
  "const __dirname = isNode ? (await import('node:path')).dirname((await import('node:url')).fileURLToPath(import.meta.url)) : '';",
  '',
].join('\n'));
// The pthread worker script is CommonJS (it require()s worker_threads in Node), while
// @omniweb/core is "type": "module": this marks the asset folder's .js files as CommonJS.
writeFileSync(`${outDir}package.json`, '{ "type": "commonjs" }\n');

const compile = ['-O3', '-msimd128', '-std=c11', '-Wall', '-Wextra', '-Werror'];
const link = [
  '-sMODULARIZE=1', '-sEXPORT_ES6=1', '-sEXPORT_NAME=createOmniKernels',
  '-sENVIRONMENT=web,worker,node', '-sFILESYSTEM=0', '-sASSERTIONS=0',
  '-sEXPORTED_RUNTIME_METHODS=[]',
  // A library must not install process-wide handlers for uncaught errors in Node.
  '-sNODEJS_CATCH_EXIT=0', '-sNODEJS_CATCH_REJECTION=0',
  // Real models: the heap grows up to the wasm32 limit; malloc failure is reported, not fatal.
  '-sALLOW_MEMORY_GROWTH=1', '-sINITIAL_MEMORY=64MB', '-sMAXIMUM_MEMORY=4GB', '-sABORTING_MALLOC=0',
  '-sTOTAL_STACK=1MB', '--no-entry', '--extern-pre-js', nodeShim, '--post-js', `${sourceDir}module-post.js`,
];

const variants = [
  { file: 'omni-kernels', compileFlags: [], linkFlags: [] },
  {
    file: 'omni-kernels-mt',
    compileFlags: ['-pthread'],
    linkFlags: [
      '-pthread', '-Wno-pthreads-mem-growth',
      // Workers the caller asks for (Module.poolSize) are loaded before the module resolves.
      '-sPTHREAD_POOL_SIZE=Module.poolSize||0', '-sPTHREAD_POOL_SIZE_STRICT=0',
    ],
  },
];

const env = { ...process.env, NODE_PATH: process.env.NODE_PATH ?? '/usr/share/nodejs' };
const relaxedEnv = { ...env, ...RELAXED_EMCC_ENV };
try {
  for (const { file, compileFlags, linkFlags } of variants) {
    let started = Date.now();
    execFileSync('emcc', [...compile, ...compileFlags, ...link, ...linkFlags, ...sources, '-o', `${outDir}${file}.mjs`], { stdio: 'inherit', env });
    console.log(`build-wasm: ${file}.mjs (${((Date.now() - started) / 1000).toFixed(1)} s)`);

    started = Date.now();
    const objects = sources.map((source) => {
      const object = `${shimDir}/${file}-${source.slice(sourceDir.length, -2)}.o`;
      execFileSync('emcc', [...compile, ...compileFlags, ...RELAXED_COMPILE_FLAGS, '-c', source, '-o', object], { stdio: 'inherit', env: relaxedEnv });
      return object;
    });
    execFileSync('emcc', [...link, ...linkFlags, ...RELAXED_LINK_FLAGS, ...objects, '-o', `${outDir}${file}-relaxed.mjs`], { stdio: 'inherit', env: relaxedEnv });
    console.log(`build-wasm: ${file}-relaxed.mjs (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }
} finally {
  rmSync(shimDir, { recursive: true, force: true });
}
