// Browser bundle of the kernel benchmark page: workspace packages from their sources,
// tfjs (the peer) resolved for the browser.
import { fileURLToPath } from 'node:url';
import commonjs from '@rollup/plugin-commonjs';
import { nodeResolve } from '@rollup/plugin-node-resolve';
import typescript from '@rollup/plugin-typescript';

const root = fileURLToPath(new URL('..', import.meta.url));
export const benchPageBuildDir = `${root}bench/.build/page`;

export default {
  input: { page: `${root}bench/kernels/page/page.ts` },
  output: { dir: benchPageBuildDir, format: 'es', sourcemap: true },
  plugins: [
    {
      name: 'omniweb-workspace-sources',
      resolveId(id) {
        const match = /^@omniweb\/([\w-]+)$/.exec(id);
        return match ? `${root}packages/${match[1]}/src/index.ts` : null;
      },
    },
    nodeResolve({ browser: true, preferBuiltins: false }),
    commonjs(),
    typescript({
      tsconfig: `${root}tsconfig.base.json`,
      include: [`${root}packages/*/src/**/*.ts`, `${root}bench/**/*.ts`],
      exclude: [`${root}**/test/**`],
      compilerOptions: { declaration: false, sourceMap: true, outDir: benchPageBuildDir, paths: {}, noEmitOnError: false },
    }),
  ],
  onwarn(warning, warn) {
    if (warning.code === 'THIS_IS_UNDEFINED' || warning.code === 'CIRCULAR_DEPENDENCY' || warning.plugin === 'typescript') return;
    warn(warning);
  },
};
