// The static server the browser tests and `pnpm demo` use: cross-origin isolation headers on
// every answer, single byte ranges (what checkpoint loading over HTTP relies on), and nothing
// served from outside its folders.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStaticServer, type StaticServer } from '../server.js';

let dir: string;
let server: StaticServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'omniweb-static-'));
  mkdirSync(join(dir, 'site'));
  writeFileSync(join(dir, 'site', 'digits.bin'), '0123456789');
  writeFileSync(join(dir, 'site', 'empty.bin'), '');
  writeFileSync(join(dir, 'site', 'index.html'), '<!doctype html>');
  writeFileSync(join(dir, 'secret.txt'), 'outside');
  server = await startStaticServer({ '/': join(dir, 'site') });
});

afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A GET with the path sent as written (fetch would resolve dot segments first); the status. */
const rawStatus = (path: string) => new Promise<number>((resolve, reject) => {
  const { hostname, port } = new URL(server.url);
  request({ hostname, port, path }, (res) => {
    res.resume();
    resolve(res.statusCode ?? 0);
  }).on('error', reject).end();
});

const get = (path: string, headers: Record<string, string> = {}, method = 'GET') => fetch(new URL(path, server.url), { headers, method });

describe('static server', () => {
  it('serves whole files cross-origin isolated, index.html for a folder', async () => {
    const res = await get('digits.bin');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('0123456789');
    expect(res.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(res.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    const index = await get('');
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await index.text()).toBe('<!doctype html>');
  });

  it('answers one byte range with 206 and its Content-Range', async () => {
    const cases: [string, string, string][] = [
      ['bytes=2-4', '234', 'bytes 2-4/10'],
      ['bytes=7-', '789', 'bytes 7-9/10'],
      ['bytes=-3', '789', 'bytes 7-9/10'],
      ['bytes=8-100', '89', 'bytes 8-9/10'],
    ];
    for (const [range, body, contentRange] of cases) {
      const res = await get('digits.bin', { Range: range });
      expect(res.status, range).toBe(206);
      expect(await res.text(), range).toBe(body);
      expect(res.headers.get('content-range'), range).toBe(contentRange);
    }
  });

  it('refuses a range past the end (416 with the size), and an empty file has no byte 0', async () => {
    const past = await get('digits.bin', { Range: 'bytes=10-12' });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe('bytes */10');
    expect((await get('empty.bin', { Range: 'bytes=0-0' })).status).toBe(416);
    const whole = await get('empty.bin');
    expect(whole.status).toBe(200);
    expect(await whole.text()).toBe('');
  });

  it('answers HEAD with the length and no body', async () => {
    const res = await get('digits.bin', {}, 'HEAD');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('10');
  });

  it('serves nothing outside its folders', async () => {
    expect(await rawStatus('/index.html')).toBe(200);
    expect(await rawStatus('/..%2fsecret.txt')).toBe(404);
    expect(await rawStatus('/../secret.txt')).toBe(404);
    expect((await get('missing.bin')).status).toBe(404);
  });
});

describe('static server port', () => {
  it('listens on the port asked for', async () => {
    const probe = await startStaticServer({ '/': dir });
    const { port } = new URL(probe.url);
    await probe.close();
    const fixed = await startStaticServer({ '/': dir }, { port: Number(port) });
    try {
      expect(fixed.url).toBe(`http://127.0.0.1:${port}/`);
    } finally {
      await fixed.close();
    }
  });
});
