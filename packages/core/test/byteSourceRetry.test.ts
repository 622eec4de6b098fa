import { describe, expect, it } from 'vitest';
import { isOmniError } from '../src/errors.js';
import { urlSource } from '../src/weights/index.js';

/** A fetch over `bytes` with Range support whose first `failures` calls fail before any response. */
function flakyFetch(bytes: Uint8Array, failures: number): { fetch: typeof fetch; calls: () => number } {
  let calls = 0;
  const fetchImpl = (async (_url: string, init?: RequestInit) => {
    calls++;
    if (calls <= failures) throw new TypeError('fetch failed: other side closed');
    const m = /^bytes=(\d+)-(\d+)$/.exec((init?.headers as Record<string, string>).Range)!;
    const [start, end] = [Number(m[1]), Number(m[2]) + 1];
    return new Response(bytes.slice(start, end), { status: 206, headers: { 'Content-Range': `bytes ${start}-${end - 1}/${bytes.length}` } });
  }) as typeof fetch;
  return { fetch: fetchImpl, calls: () => calls };
}

describe('urlSource over a connection that drops', () => {
  const bytes = Uint8Array.from({ length: 100 }, (_, i) => i);

  it('sends a request again when the connection fails before a response', async () => {
    const flaky = flakyFetch(bytes, 2);
    const source = (await urlSource('http://example.test/f', { fetch: flaky.fetch }))!;
    expect([...(await source.read(10, 3))]).toEqual([10, 11, 12]);
    expect(flaky.calls()).toBe(4);
  });

  it('gives up with IO after three failed tries', async () => {
    const flaky = flakyFetch(bytes, 3);
    const error = await urlSource('http://example.test/f', { fetch: flaky.fetch }).catch((e: unknown) => e);
    expect(isOmniError(error, 'IO')).toBe(true);
    expect((error as Error).message).toMatch(/fetching http:\/\/example.test\/f failed \(3 attempts\): fetch failed/);
    expect(flaky.calls()).toBe(3);
  });

  it('does not retry an aborted request', async () => {
    const controller = new AbortController();
    controller.abort();
    const flaky = flakyFetch(bytes, 1);
    const error = await urlSource('http://example.test/f', { fetch: flaky.fetch, signal: controller.signal }).catch((e: unknown) => e);
    expect(isOmniError(error, 'ABORTED')).toBe(true);
    expect(flaky.calls()).toBe(1);
  });
});
