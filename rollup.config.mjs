// One ESM bundle and one bundled .d.ts per package. Workspace packages and npm
// dependencies stay external: each package ships only its own code (plus core's
// kernel assets, which the wasm loader finds next to dist/ via import.meta.url).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import typescript from '@rollup/plugin-typescript';
import { dts } from 'rollup-plugin-dts';

const only = process.env.PACKAGES?.split(',');
const external = (id) => !id.startsWith('.') && !isAbsolute(id) && !id.startsWith('\0');

// Dependencies first: each package's types are checked against its dependencies' built .d.ts.
function buildOrder(names) {
  const deps = (name) => Object.keys(JSON.parse(readFileSync(`packages/${name}/package.json`, 'utf8')).dependencies ?? {})
    .filter((d) => d.startsWith('@omniweb/')).map((d) => d.slice('@omniweb/'.length)).filter((d) => names.includes(d));
  const order = [];
  const visit = (name, path = []) => {
    if (order.includes(name)) return;
    if (path.includes(name)) throw new Error(`dependency cycle: ${[...path, name].join(' → ')}`);
    for (const d of deps(name)) visit(d, [...path, name]);
    order.push(name);
  };
  for (const name of names) visit(name);
  return order;
}

const configs = [];
const packages = readdirSync('packages').filter((name) => existsSync(`packages/${name}/package.json`));
for (const name of buildOrder(packages)) {
  if (only && !only.includes(name)) continue;
  const dir = `packages/${name}`;
  if (!existsSync(`${dir}/src/index.ts`)) continue;
  const inputs = { index: `${dir}/src/index.ts` };
  if (existsSync(`${dir}/src/main.ts`)) inputs.main = `${dir}/src/main.ts`;
  // A worker entry (the orchestrator's stage worker) is its own input, so apps can bundle it as a worker script.
  if (existsSync(`${dir}/src/worker.ts`)) inputs.worker = `${dir}/src/worker.ts`;
  configs.push({
    input: inputs,
    external,
    output: { dir: `${dir}/dist`, format: 'es', sourcemap: true, entryFileNames: '[name].js' },
    plugins: [typescript({
      tsconfig: 'tsconfig.base.json',
      include: [`${dir}/src/**/*.ts`],
      compilerOptions: { declaration: false, sourceMap: true, outDir: `${dir}/dist`, paths: {} },
    })],
  });
  configs.push({
    input: `${dir}/src/index.ts`,
    external,
    output: { file: `${dir}/dist/index.d.ts`, format: 'es' },
    plugins: [dts({ tsconfig: 'tsconfig.base.json', compilerOptions: { paths: {} } })],
  });
}
export default configs;
