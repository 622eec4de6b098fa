/**
 * A static file server for browser tests and the demo, on 127.0.0.1 (a free port unless one
 * is given). Every response is cross-origin isolated (COOP + COEP + CORP), which is what makes
 * SharedArrayBuffer and so the threaded wasm build available to the page. Single byte ranges
 * are served (206), so checkpoints are read a tensor range at a time as from any web host.
 */
import { createReadStream } from 'node:fs';
import { createServer } from 'node:http';
import { stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import type { AddressInfo } from 'node:net';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.wgsl': 'text/plain; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

export interface StaticServer {
  /** Origin with a trailing slash, e.g. http://127.0.0.1:41234/ */
  url: string;
  close(): Promise<void>;
}

export interface StaticServerOptions {
  /** Default 0: any free port. */
  port?: number;
}

/** `bytes=a-b`, `bytes=a-` or `bytes=-n` within a file of `size` bytes → [start, end] inclusive; null when unsatisfiable or not one range. */
function byteRange(header: string, size: number): [number, number] | null {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return null;
  const [start, end] = match[1] === ''
    ? [Math.max(0, size - Number(match[2])), size - 1]
    : [Number(match[1]), match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1)];
  return start <= end && start < size ? [start, end] : null;
}

/** Serves each URL prefix (e.g. '/assets/') from a folder; '/' maps to `routes['/']`. */
export async function startStaticServer(routes: Record<string, string>, options: StaticServerOptions = {}): Promise<StaticServer> {
  const prefixes = Object.keys(routes).sort((a, b) => b.length - a.length);
  const server = createServer(async (request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname);
    const prefix = prefixes.find((p) => path.startsWith(p));
    const root = prefix === undefined ? undefined : normalize(routes[prefix]);
    const file = root === undefined ? undefined : normalize(join(root, path.slice(prefix!.length) || 'index.html'));
    // Refuse anything that climbs out of its folder.
    if (root === undefined || file === undefined || !(file === root || file.startsWith(root.endsWith(sep) ? root : root + sep))) {
      response.writeHead(404, ISOLATION_HEADERS).end();
      return;
    }
    try {
      const target = (await stat(file)).isDirectory() ? join(file, 'index.html') : file;
      const { size } = await stat(target);
      const headers = { ...ISOLATION_HEADERS, 'Content-Type': CONTENT_TYPES[extname(target)] ?? 'application/octet-stream', 'Accept-Ranges': 'bytes' };
      const rangeHeader = request.headers.range;
      const range = rangeHeader === undefined ? [0, size - 1] as const : byteRange(rangeHeader, size);
      if (range === null) {
        response.writeHead(416, { ...headers, 'Content-Range': `bytes */${size}` }).end();
        return;
      }
      const [start, end] = range;
      response.writeHead(rangeHeader === undefined ? 200 : 206, {
        ...headers,
        'Content-Length': Math.max(0, end - start + 1),
        ...(rangeHeader === undefined ? {} : { 'Content-Range': `bytes ${start}-${end}/${size}` }),
      });
      if (size === 0 || request.method === 'HEAD') {
        response.end();
        return;
      }
      createReadStream(target, { start, end }).on('error', () => response.destroy()).pipe(response);
    } catch {
      response.writeHead(404, ISOLATION_HEADERS).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
