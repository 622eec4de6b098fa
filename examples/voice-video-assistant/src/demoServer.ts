/**
 * `pnpm demo`'s server (Node): the page, its bundle, core's wasm kernels and the embedded tiny
 * checkpoint (made on first use), cross-origin isolated, on http://127.0.0.1:5173 (`PORT`
 * overrides). The e2e tests serve the same routes.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startStaticServer, type StaticServer } from '../../../e2e/server.js';
// The embedded checkpoint, made as `pnpm start` makes it (official layout, random weights).
import { EMBEDDED_MODEL, ensureEmbeddedModel } from '../../../packages/cli/src/run.js';
import { TINY_MODEL_PATH } from './params.js';

const here = fileURLToPath(new URL('..', import.meta.url));
const root = fileURLToPath(new URL('../../..', import.meta.url));
const DEFAULT_PORT = 5173;

/** URL prefix → folder. The bundle sits at /build/ so that core's loader finds its kernels at /assets/. */
export function demoRoutes(): Record<string, string> {
  return {
    '/': `${here}public`,
    '/build/': `${here}dist/build`,
    '/assets/': `${root}packages/core/assets`,
    [`/${TINY_MODEL_PATH}`]: EMBEDDED_MODEL,
  };
}

/** What the page needs on disk: the bundle (`pnpm --filter @omniweb/voice-video-assistant build`) and the kernels (`pnpm build:kernels`). */
export function missingBuildOutputs(): string[] {
  const needed = [`${here}dist/build/app.js`, `${root}packages/core/assets/omni-kernels.wasm`];
  return needed.filter((path) => !existsSync(path));
}

export async function serveDemo(port: number, log: (line: string) => void): Promise<StaticServer> {
  const missing = missingBuildOutputs();
  if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: run \`pnpm demo\` (it builds the page) after \`bash scripts/setup.sh\` (it builds the kernels)`);
  await ensureEmbeddedModel(log);
  return startStaticServer(demoRoutes(), { port });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = process.env.PORT === undefined ? DEFAULT_PORT : Number(process.env.PORT);
  if (!Number.isSafeInteger(port) || port < 0 || port > 65535) throw new Error(`PORT=${process.env.PORT} is not a port number`);
  const server = await serveDemo(port, (line) => console.log(line));
  console.log(`OmniWeb voice & video assistant: ${server.url}`);
  console.log(`  hands-free on load: ${server.url}?autostart=1    wasm only: ${server.url}?device=wasm    Ctrl-C stops`);
}
