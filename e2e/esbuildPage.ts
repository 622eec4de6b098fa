/** A test page: one TypeScript entry bundled for the browser with the workspace packages from their sources, and an index.html that loads it. */
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The part of esbuild's API used here (esbuild is bench/'s dependency, not e2e/'s). */
interface Esbuild {
  build(options: Record<string, unknown> & {
    plugins: { name: string; setup(b: { onResolve(o: { filter: RegExp }, f: (args: { path: string }) => { path: string }): void }): void }[];
  }): Promise<unknown>;
}

/** Bundles `entry` to `<pageDir>/build/page.js` and writes `<pageDir>/index.html` titled `title`. */
export async function bundleTestPage(entry: string, pageDir: string, title: string): Promise<void> {
  const { build } = createRequire(`${root}bench/package.json`)('esbuild') as Esbuild;
  mkdirSync(`${pageDir}/build`, { recursive: true });
  await build({
    entryPoints: [entry],
    outfile: `${pageDir}/build/page.js`,
    bundle: true, format: 'esm', platform: 'browser', target: 'es2022', logLevel: 'warning',
    plugins: [{
      name: 'omniweb-workspace-sources',
      setup(b) {
        b.onResolve({ filter: /^@omniweb\/[\w-]+$/ }, (args) => {
          const pkg = args.path.slice('@omniweb/'.length);
          return { path: pkg === 'kernels' ? `${root}kernels/index.ts` : `${root}packages/${pkg}/src/index.ts` };
        });
      },
    }],
    // Node-only branches (fs, worker_threads; media's Node image decoders) sit behind runtime checks.
    external: ['node:*', 'pngjs', 'jpeg-js'],
  });
  writeFileSync(`${pageDir}/index.html`, `<!doctype html>\n<meta charset="utf-8">\n<title>${title}</title>\n<script type="module" src="./build/page.js"></script>\n`);
}
