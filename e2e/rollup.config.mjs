// Browser bundles for the e2e pages: workspace packages from their TypeScript sources,
// npm dependencies (tfjs and its CommonJS helpers) resolved for the browser.
import { fileURLToPath } from 'node:url';
import commonjs from '@rollup/plugin-commonjs';
import { nodeResolve } from '@rollup/plugin-node-resolve';
import typescript from '@rollup/plugin-typescript';

const root = fileURLToPath(new URL('..', import.meta.url));

/** @omniweb/<pkg> → packages/<pkg>/src/index.ts, @omniweb/kernels → kernels/index.ts (as vitest.config.ts maps them). */
const workspaceSources = {
  name: 'omniweb-workspace-sources',
  resolveId(id) {
    if (id === '@omniweb/kernels') return `${root}kernels/index.ts`;
    const match = /^@omniweb\/([\w-]+)$/.exec(id);
    return match ? `${root}packages/${match[1]}/src/index.ts` : null;
  },
};

export const kernelPageBuildDir = `${root}e2e/dist/kernels/build`;

export default {
  input: { page: `${root}e2e/kernels/page.ts` },
  output: { dir: kernelPageBuildDir, format: 'es', sourcemap: true },
  plugins: [
    workspaceSources,
    nodeResolve({ browser: true, preferBuiltins: false }),
    commonjs(),
    typescript({
      tsconfig: `${root}tsconfig.base.json`,
      include: [`${root}packages/*/src/**/*.ts`, `${root}kernels/**/*.ts`, `${root}e2e/kernels/**/*.ts`],
      exclude: [`${root}**/test/**`],
      compilerOptions: { declaration: false, sourceMap: true, outDir: kernelPageBuildDir, paths: {}, noEmitOnError: false },
      noForceEmit: false,
    }),
  ],
  onwarn(warning, warn) {
    // tfjs's bundles use `this` at module top level and circular imports; both are harmless.
    if (warning.code === 'THIS_IS_UNDEFINED' || warning.code === 'CIRCULAR_DEPENDENCY') return;
    // Type errors are `pnpm typecheck`'s to report; here they would repeat it for every package.
    if (warning.plugin === 'typescript') return;
    warn(warning);
  },
};
