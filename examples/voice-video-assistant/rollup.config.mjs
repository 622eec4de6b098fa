// The page bundle and the stage worker (the SDK and its packages from their TypeScript sources,
// through the tsconfig path map; npm dependencies resolved for the browser) and the player's AudioWorklet
// processor, a self-contained module since a worklet scope cannot share the page's chunks.
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import commonjs from '@rollup/plugin-commonjs';
import { nodeResolve } from '@rollup/plugin-node-resolve';
import typescript from '@rollup/plugin-typescript';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = fileURLToPath(new URL('../..', import.meta.url));
/** Served at /build/: core's wasm loader finds its kernels at ../assets/ from here. */
export const buildDir = `${here}dist/build`;

const typescriptFor = (include) => typescript({
  tsconfig: `${root}tsconfig.base.json`,
  include,
  exclude: [`${root}**/test/**`],
  compilerOptions: { declaration: false, sourceMap: true, outDir: buildDir, noEmitOnError: false },
  noForceEmit: false,
});

const nodeBuiltin = (id = '') => id.startsWith('node:') || builtinModules.includes(id);

function onwarn(warning, warn) {
  // tfjs's bundles use `this` at module top level and circular imports; both are harmless.
  if (warning.code === 'THIS_IS_UNDEFINED' || warning.code === 'CIRCULAR_DEPENDENCY') return;
  // Node built-ins are imported only on the packages' Node paths (files, pngjs), never in the page.
  if (warning.code === 'UNRESOLVED_IMPORT' && nodeBuiltin(warning.exporter)) return;
  // Type errors are `pnpm typecheck`'s to report.
  if (warning.plugin === 'typescript') return;
  warn(warning);
}

const worklet = (name) => ({
  input: `${here}src/worklets/${name}.ts`,
  output: { file: `${buildDir}/worklets/${name}.js`, format: 'es', sourcemap: true },
  plugins: [typescriptFor([`${here}src/worklets/**/*.ts`])],
  onwarn,
});

export default [
  {
    // The orchestrator's stage worker entry (`@omniweb/orchestrator/worker`) is an input of its own:
    // the page passes its URL as Omni.load's workerUrl.
    input: { app: `${here}src/main.ts`, 'stage-worker': `${root}packages/orchestrator/src/worker.ts` },
    output: { dir: buildDir, format: 'es', sourcemap: true },
    plugins: [
      nodeResolve({ browser: true, preferBuiltins: false }),
      commonjs(),
      typescriptFor([`${root}packages/*/src/**/*.ts`, `${here}src/**/*.ts`]),
    ],
    onwarn,
  },
  worklet('pcmPlayer'),
];
