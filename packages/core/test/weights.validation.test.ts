import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OmniError, type OmniErrorCode } from '../src/errors.js';
import { quantize, toF16Array } from '../src/quant.js';
import {
  blobFiles, MAX_HEADER_BYTES, openCheckpoint, openSafetensors, pathSource, urlSource, writeSafetensors, type HostArray,
} from '../src/weights/index.js';

/** A header + data file with the header given verbatim (no validation on our side). */
function fileWithHeader(header: unknown, dataBytes: number): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 8);
  return out;
}

async function failure(p: Promise<unknown>): Promise<{ code: OmniErrorCode; message: string }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof OmniError) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected an OmniError');
}

const f32 = (shape: number[], values?: number[]): HostArray => ({
  dtype: 'f32', shape, data: values ? Float32Array.from(values) : new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, i) => i),
});

describe('header validation', () => {
  const cases: { what: string; bytes: () => Uint8Array; code: OmniErrorCode; message: RegExp }[] = [
    { what: 'a file shorter than the length prefix', bytes: () => new Uint8Array(5), code: 'TRUNCATED', message: /5 bytes, shorter than the 8-byte/ },
    {
      what: 'a header length over the limit',
      bytes: () => { const b = new Uint8Array(16); new DataView(b.buffer).setUint32(0, MAX_HEADER_BYTES + 1, true); return b; },
      code: 'BAD_HEADER', message: /header length 104857601 bytes is over the 104857600-byte limit/,
    },
    {
      what: 'a header length with the high word set',
      bytes: () => { const b = new Uint8Array(16); new DataView(b.buffer).setUint32(4, 1, true); return b; },
      code: 'BAD_HEADER', message: /header length 4294967296 bytes/,
    },
    {
      what: 'a header running past the end of the file',
      bytes: () => { const b = new Uint8Array(20); new DataView(b.buffer).setUint32(0, 100, true); return b; },
      code: 'TRUNCATED', message: /header announces 100 bytes but the file is only 20 bytes/,
    },
    { what: 'invalid JSON', bytes: () => fileWithHeader('{"a": ', 0), code: 'BAD_HEADER', message: /header is not UTF-8 JSON/ },
    { what: 'a JSON array', bytes: () => fileWithHeader('[]', 0), code: 'BAD_HEADER', message: /header is not a JSON object/ },
    {
      what: 'a missing dtype',
      bytes: () => fileWithHeader({ a: { shape: [1], data_offsets: [0, 4] } }, 4),
      code: 'BAD_HEADER', message: /tensor a has no string "dtype"/,
    },
    {
      what: 'a negative dimension',
      bytes: () => fileWithHeader({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4),
      code: 'BAD_HEADER', message: /tensor a has "shape" \[-1\], not a list of non-negative integers/,
    },
    {
      what: 'offsets that are not a pair',
      bytes: () => fileWithHeader({ a: { dtype: 'F32', shape: [1], data_offsets: [0] } }, 4),
      code: 'BAD_HEADER', message: /tensor a has "data_offsets" \[0\], not two non-negative integers/,
    },
    {
      what: 'an unknown dtype',
      bytes: () => fileWithHeader({ a: { dtype: 'Q4_K', shape: [1], data_offsets: [0, 4] } }, 4),
      code: 'UNSUPPORTED_DTYPE', message: /tensor a has unknown dtype "Q4_K"/,
    },
    {
      what: 'offsets that end before they begin',
      bytes: () => fileWithHeader({ a: { dtype: 'F32', shape: [0], data_offsets: [4, 0] } }, 4),
      code: 'BAD_OFFSETS', message: /data_offsets \[4, 0\], which end before they begin/,
    },
    {
      what: 'a byte range that does not match dtype × shape',
      bytes: () => fileWithHeader({ a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 20] } }, 20),
      code: 'SHAPE_MISMATCH', message: /tensor a is F32 \[2, 3\] \(24 bytes\) but its data_offsets span 20 bytes/,
    },
    {
      what: 'overlapping tensors',
      bytes: () => fileWithHeader({
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
      }, 12),
      code: 'BAD_OFFSETS', message: /tensors a \[0, 8\) and b \[4, 12\) overlap/,
    },
    {
      what: 'a tensor past the data section behind a gap',
      bytes: () => fileWithHeader({ a: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, 8),
      code: 'BAD_OFFSETS', message: /tensor a ends at data byte 12, past the 8-byte data section/,
    },
    {
      what: 'a packed layout missing its last bytes',
      bytes: () => writeSafetensors([['a', f32([4])]]).slice(0, -3),
      code: 'TRUNCATED', message: /the file is truncated/,
    },
  ];
  for (const { what, bytes, code, message } of cases) {
    it(`rejects ${what}`, async () => {
      const err = await failure(openSafetensors(bytes()));
      expect(err.code).toBe(code);
      expect(err.message).toMatch(message);
    });
  }

  it('opens a file with a defined but unread dtype and refuses only that tensor', async () => {
    const bytes = fileWithHeader({
      d: { dtype: 'F64', shape: [1], data_offsets: [0, 8] }, a: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
    }, 12);
    const store = await openSafetensors(bytes);
    expect([...(await store.readF32('a'))]).toEqual([0]);
    const err = await failure(store.readF32('d'));
    expect(err.code).toBe('UNSUPPORTED_DTYPE');
    expect(err.message).toMatch(/tensor d in in-memory buffer is F64/);
  });

  it('refuses wrong-kind reads with WRONG_DTYPE and 1-D matrices with SHAPE_MISMATCH', async () => {
    const store = await openSafetensors(writeSafetensors([
      ['ids', { dtype: 'i32', shape: [2, 2], data: Int32Array.of(1, 2, 3, 4) }], ['v', f32([3])],
    ]));
    expect((await failure(store.readF32('ids'))).code).toBe('WRONG_DTYPE');
    expect((await failure(store.readInt32('v'))).code).toBe('WRONG_DTYPE');
    expect((await failure(store.readMatrix('ids', 'q8'))).code).toBe('WRONG_DTYPE');
    expect((await failure(store.readMatrix('v', 'f32'))).message).toMatch(/tensor v has shape \[3\]; a matrix weight needs at least 2 dimensions/);
    expect((await failure(store.readF32('nope'))).message).toMatch(/tensor nope is not in in-memory buffer/);
  });

  it('rejects wrong arguments to the public entry points with BAD_INPUT', async () => {
    expect((await failure(openCheckpoint(42 as never))).message).toMatch(/cannot read weights from a \[object Number\]/);
    const store = await openSafetensors(writeSafetensors([['m', f32([2, 2])]]));
    expect((await failure(store.readMatrix('m', 'q3' as never))).message).toMatch(/weight format "q3" is not one of f32, f16, q8, q4/);
    const wrongData = (): unknown => writeSafetensors([['x', { dtype: 'f32', shape: [2], data: Int32Array.of(1, 2) } as never]]);
    const wrongShape = (): unknown => writeSafetensors([['x', f32([3], [1, 2])]]);
    for (const [run, code, message] of [
      [() => writeSafetensors(5 as never), 'BAD_INPUT', /takes a Map or a list/],
      [wrongData, 'BAD_INPUT', /x has dtype f32 and data Int32Array/],
      [wrongShape, 'SHAPE_MISMATCH', /x has shape \[3\] but 2 values/],
      [() => blobFiles(null as never), 'BAD_INPUT', /blobFiles takes/],
    ] as const) {
      expect(await failure((async () => run())())).toMatchObject({ code });
      expect((await failure((async () => run())())).message).toMatch(message);
    }
  });

  it('stops with ABORTED once the signal fires', async () => {
    const controller = new AbortController();
    const store = await openSafetensors(writeSafetensors([['a', f32([2])]]), { signal: controller.signal });
    await store.readF32('a');
    controller.abort();
    expect((await failure(store.readF32('a'))).code).toBe('ABORTED');
  });

  it('rejects index entries that leave the checkpoint folder', async () => {
    const files = blobFiles({ 'model.safetensors.index.json': new Blob([JSON.stringify({ weight_map: { a: '../secret.safetensors' } })]) });
    const err = await failure(openCheckpoint(files));
    expect(err.code).toBe('BAD_HEADER');
    expect(err.message).toMatch(/names file "\.\.\/secret\.safetensors", which is not a file inside the checkpoint folder/);
  });

  it('rejects an index without a weight_map', async () => {
    const files = blobFiles({ 'model.safetensors.index.json': new Blob(['{"metadata": {}}']) });
    expect((await failure(openCheckpoint(files))).message).toMatch(/has no "weight_map" object/);
  });

  it('converts a matrix block by block exactly as in one piece', async () => {
    // 7 × 40: a 200-byte block holds one 160-byte f32 row, so every format walks 7 blocks.
    const bytes = writeSafetensors([['m', f32([7, 40], Array.from({ length: 280 }, (_, i) => Math.sin(i) * (1 + (i % 7))))]]);
    const whole = await openSafetensors(bytes);
    const blocked = await openSafetensors(bytes, { matrixBlockBytes: 200 });
    const ref = await whole.readMatrix('m', 'f32');
    expect(quantize(ref.data as Float32Array, 7, 40, 'q4', 'f16')).toEqual(await blocked.readMatrix('m', 'q4'));
    expect(quantize(ref.data as Float32Array, 7, 40, 'q8', 'f16')).toEqual(await blocked.readMatrix('m', 'q8'));
    expect((await blocked.readMatrix('m', 'f16')).data).toEqual(toF16Array(ref.data as Float32Array));
    expect((await blocked.readMatrix('m', 'f32')).data).toEqual(await whole.readF32('m'));
  });
});

describe('byte sources', () => {
  const bytes = writeSafetensors([['a', f32([2, 3])], ['b', f32([5], [9, 8, 7, 6, 5])]]);
  let server: Server;
  let base: string;
  const rangeRequests: string[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const range = req.headers.range;
      if (req.url === '/ranged/model.safetensors' && range) {
        rangeRequests.push(range);
        const m = /^bytes=(\d+)-(\d+)$/.exec(range)!;
        const start = Number(m[1]);
        const end = Math.min(Number(m[2]), bytes.length - 1);
        res.writeHead(206, { 'Content-Range': `bytes ${start}-${end}/${bytes.length}`, 'Content-Length': end - start + 1 });
        res.end(bytes.subarray(start, end + 1));
      } else if (req.url === '/plain/model.safetensors') {
        res.writeHead(200, { 'Content-Length': bytes.length });
        res.end(bytes);
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('reads tensors with HTTP range requests, never the whole file', async () => {
    rangeRequests.length = 0;
    const ckpt = await openCheckpoint(`${base}/ranged/`);
    expect([...(await ckpt.readF32('b'))]).toEqual([9, 8, 7, 6, 5]);
    // Probe, length prefix, header, one tensor: each a small range.
    expect(rangeRequests.length).toBe(4);
    const tensorOffset = ckpt.info('b').byteOffset;
    expect(rangeRequests[3]).toBe(`bytes=${tensorOffset}-${tensorOffset + 19}`);
    expect(await ckpt.readText('config.json')).toBeNull();
    await ckpt.close();
  });

  it('falls back to one full download when the server ignores Range, within the limit', async () => {
    const store = await openSafetensors(`${base}/plain/model.safetensors`);
    expect([...(await store.readF32('b'))]).toEqual([9, 8, 7, 6, 5]);
    const err = await failure(urlSource(`${base}/plain/model.safetensors`, { maxUnrangedBytes: 16 }));
    expect(err.code).toBe('IO');
    expect(err.message).toMatch(/ignores HTTP Range requests and is \d+ bytes, over the 16-byte limit/);
  });

  it('treats 404 as absent: IO for a file, "neither index nor model" for a folder', async () => {
    expect(await urlSource(`${base}/missing.safetensors`)).toBeNull();
    expect((await failure(openSafetensors(`${base}/missing.safetensors`))).message).toMatch(/missing\.safetensors does not exist/);
    expect((await failure(openCheckpoint(`${base}/nothing/`))).message).toMatch(/has neither model\.safetensors\.index\.json nor model\.safetensors/);
  });

  it('reads a local file by positioned reads and reports a missing path as null / IO', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'omniweb-src-'));
    try {
      writeFileSync(join(dir, 'x.safetensors'), bytes);
      const source = (await pathSource(join(dir, 'x.safetensors')))!;
      expect(source.size).toBe(bytes.length);
      expect([...(await source.read(3, 4))]).toEqual([...bytes.subarray(3, 7)]);
      expect((await failure(source.read(bytes.length - 2, 4))).code).toBe('TRUNCATED');
      await source.close();
      expect(await pathSource(join(dir, 'absent.safetensors'))).toBeNull();
      expect((await failure(openCheckpoint(join(dir, 'absent')))).code).toBe('IO');
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('opens a folder of picked files (browser) by name', async () => {
    const files = blobFiles([new File([bytes], 'model.safetensors'), new File(['{"model_type":"x"}'], 'config.json')]);
    const ckpt = await openCheckpoint(files);
    expect(ckpt.names()).toEqual(['a', 'b']);
    expect(await ckpt.readText('config.json')).toBe('{"model_type":"x"}');
  });
});
