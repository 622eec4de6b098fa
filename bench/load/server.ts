/**
 * A static file server on 127.0.0.1 for model folders, as a CDN serves them: HTTP Range
 * requests (206 with Content-Range), 404 for what is missing, cross-origin isolation headers
 * for pages. It counts the requests per file, so tests and benchmarks can tell what a load
 * fetched, and can be told to fail a file (a cut-off download).
 */
import { createServer } from 'node:http';
import { open, stat } from 'node:fs/promises';
import { join, normalize, sep } from 'node:path';
import type { AddressInfo } from 'node:net';

const HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Accept-Ranges': 'bytes',
  'Cache-Control': 'no-store',
};

/** Content types for serving a bundled test page and the kernel assets next to the models. */
export const PAGE_CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm', '.json': 'application/json',
};

export interface ModelServer {
  /** Origin with a trailing slash. */
  url: string;
  /** Requests per path since start (or the last `resetCounts`). */
  requests: Map<string, number>;
  /** Bytes of response bodies sent since start (or the last `resetCounts`). */
  bytesSent(): number;
  resetCounts(): void;
  /** Paths answered with HTTP 500 until removed again. */
  failing: Set<string>;
  close(): Promise<void>;
}

/** Serves `routes` (URL prefix → folder, longest prefix first); extra content types by extension. */
export async function startModelServer(routes: Record<string, string>, contentTypes: Record<string, string> = {}): Promise<ModelServer> {
  const prefixes = Object.keys(routes).sort((a, b) => b.length - a.length);
  const requests = new Map<string, number>();
  const failing = new Set<string>();
  let sent = 0;
  const server = createServer(async (request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname);
    requests.set(path, (requests.get(path) ?? 0) + 1);
    const prefix = prefixes.find((p) => path.startsWith(p));
    const root = prefix === undefined ? undefined : normalize(routes[prefix]);
    const file = root === undefined ? undefined : normalize(join(root, path.slice(prefix!.length) || 'index.html'));
    if (failing.has(path)) {
      response.writeHead(500, HEADERS).end();
      return;
    }
    // Refuse anything that climbs out of its folder.
    if (root === undefined || file === undefined || !file.startsWith(root.endsWith(sep) ? root : root + sep)) {
      response.writeHead(404, HEADERS).end();
      return;
    }
    const size = await stat(file).then((s) => (s.isFile() ? s.size : null), () => null);
    if (size === null) {
      response.writeHead(404, HEADERS).end();
      return;
    }
    const type = contentTypes[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream';
    const range = /^bytes=(\d+)-(\d*)$/.exec(request.headers.range ?? '');
    let start = 0;
    let end = size;
    if (range) {
      start = Number(range[1]);
      end = range[2] === '' ? size : Math.min(size, Number(range[2]) + 1);
      if (start >= size) {
        response.writeHead(416, { ...HEADERS, 'Content-Range': `bytes */${size}` }).end();
        return;
      }
      response.writeHead(206, { ...HEADERS, 'Content-Type': type, 'Content-Length': end - start, 'Content-Range': `bytes ${start}-${end - 1}/${size}` });
    } else {
      response.writeHead(200, { ...HEADERS, 'Content-Type': type, 'Content-Length': size });
    }
    const handle = await open(file, 'r');
    try {
      const chunk = Buffer.allocUnsafe(Math.min(end - start, 8 * 2 ** 20));
      for (let at = start; at < end;) {
        const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, end - at), at);
        if (bytesRead === 0) break;
        // The socket copies what it is given only later; a fresh copy keeps the chunk buffer reusable.
        if (!response.write(Buffer.from(chunk.subarray(0, bytesRead)))) {
          await new Promise<void>((resolve) => {
            const done = () => {
              response.off('drain', done);
              response.off('close', done);
              resolve();
            };
            response.on('drain', done);
            response.on('close', done);
          });
        }
        // The client went away (a cancelled body): stop reading the file.
        if (response.destroyed) break;
        at += bytesRead;
        sent += bytesRead;
      }
    } finally {
      await handle.close();
    }
    response.end();
  });
  // Loaders pause between range requests while they convert a block; keep their connections open.
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    requests,
    bytesSent: () => sent,
    resetCounts() {
      requests.clear();
      sent = 0;
    },
    failing,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
