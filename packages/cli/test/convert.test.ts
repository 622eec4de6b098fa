/**
 * `omniweb convert` and loading what it writes: every tensor reads back as the original
 * converts it, shards stay under the size asked for, and a folder that is incomplete, short
 * or corrupt fails to open with a typed error. Over HTTP with a model cache: the second load
 * fetches nothing but the manifest, a cut-off load resumes after the last good shard, and a
 * full cache continues in memory with a warning.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  memoryCache, openCheckpoint, parseManifest, partDataName, MANIFEST_FILE, type Checkpoint, type HostMatrix, type LoadWarning, type Manifest,
} from '@omniweb/core';
import { startModelServer, type ModelServer } from '../../../bench/load/server.js';
import { convertCheckpoint, parseConvertArgs } from '../src/convert.js';
import { makeCheckpoint } from '../src/makeCheckpoint.js';
import { ensureEmbeddedModel } from '../src/run.js';
import { failure } from './omniFailure.js';

const SHARD = 2 * 2 ** 20;

/** Byte equality of two arrays' storage (toEqual walks millions of elements one by one). */
function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function sameMatrix(a: HostMatrix, b: HostMatrix): boolean {
  return a.format === b.format && a.rows === b.rows && a.cols === b.cols && sameBytes(a.data, b.data)
    && ('scales' in a && 'scales' in b ? sameBytes(a.scales, b.scales) : !('scales' in a) && !('scales' in b));
}

function readManifest(dir: string): Manifest {
  return parseManifest(readFileSync(join(dir, MANIFEST_FILE), 'utf8'), dir);
}

describe('omniweb convert', () => {
  let scratch: string;
  let tiny: string;
  const converted: Record<'q4' | 'q8' | 'f16', string> = { q4: '', q8: '', f16: '' };

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'omniweb-convert-'));
    tiny = await ensureEmbeddedModel(() => {});
    for (const weights of ['q4', 'q8', 'f16'] as const) {
      converted[weights] = join(scratch, weights);
      await convertCheckpoint({ source: tiny, out: converted[weights], weights, shardBytes: SHARD });
    }
  }, 300_000);

  afterAll(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  for (const weights of ['q4', 'q8', 'f16'] as const) {
    it(`${weights}: every tensor reads back as the original converts it; shards ≤ the size asked for`, async () => {
      const original = await openCheckpoint(tiny);
      const web = await openCheckpoint(converted[weights]);
      try {
        expect(web.manifest?.weights).toBe(weights);
        expect(web.names().sort()).toEqual(original.names().sort());
        let matrices = 0;
        for (const name of original.names()) {
          expect(web.info(name).shape).toEqual(original.info(name).shape);
          if (web.convertedFormat(name) === null) {
            expect(web.info(name).dtype).toBe(original.info(name).dtype);
            expect(sameBytes(await web.readStored(name), await original.readStored(name))).toBe(true);
            continue;
          }
          matrices++;
          expect(web.convertedFormat(name)).toBe(weights);
          expect(sameMatrix(await web.readMatrix(name, weights), await original.readMatrix(name, weights)), name).toBe(true);
        }
        // Audio, vision, thinker and talker matrices; token2wav stays as stored.
        expect(matrices).toBeGreaterThan(50);
        expect(web.convertedFormat('token2wav.code2wav_dit_model.input_embed.proj.weight')).toBeNull();
        for (const shard of readManifest(converted[weights]).shards) {
          expect(statSync(join(converted[weights], shard.file)).size).toBe(shard.bytes);
          expect(shard.bytes).toBeLessThanOrEqual(SHARD);
        }
        for (const file of ['config.json', 'tokenizer.json', 'spk_dict.pt']) {
          expect(readFileSync(join(converted[weights], file)).equals(readFileSync(join(tiny, file)))).toBe(true);
        }
      } finally {
        await original.close();
        await web.close();
      }
    });
  }

  it('splits a matrix bigger than a shard by rows', () => {
    const embed = readManifest(converted.f16).matrices['thinker.model.embed_tokens.weight'];
    // 151936 × 32 halves = 9.3 MiB: five 2 MiB shards at least.
    expect(embed.parts.length).toBeGreaterThanOrEqual(5);
    expect(embed.parts[0].rows[0]).toBe(0);
    expect(embed.parts.at(-1)!.rows[1]).toBe(151936);
    expect(partDataName('m', embed.parts[1])).toBe(`m/rows.${embed.parts[1].rows[0]}-${embed.parts[1].rows[1]}`);
  });

  it('reads a converted matrix only in its format, and never as floats', async () => {
    const web = await openCheckpoint(converted.q4);
    try {
      const name = 'thinker.model.layers.0.mlp.up_proj.weight';
      const asQ8 = await failure(() => web.readMatrix(name, 'q8'));
      expect(asQ8.code).toBe('WRONG_DTYPE');
      expect(asQ8.message).toMatch(/converted to q4 .* load with weights q4/);
      expect((await failure(() => web.readF32(name))).code).toBe('WRONG_DTYPE');
    } finally {
      await web.close();
    }
  });

  it('stops with ABORTED before the next shard once the signal fired', async () => {
    expect((await failure(() => openCheckpoint(converted.q4, { signal: AbortSignal.abort() }))).code).toBe('ABORTED');
  });

  it('refuses bad arguments and an already converted folder with BAD_INPUT', async () => {
    expect(() => parseConvertArgs([])).toThrow(/checkpoint folder to convert comes first/);
    expect(() => parseConvertArgs([tiny, '--out', 'x'])).toThrow(/--weights is required/);
    expect(() => parseConvertArgs([tiny, '--weights', 'q3', '--out', 'x'])).toThrow(/--weights q3 is not one of q4, q8, f16/);
    expect(() => parseConvertArgs([tiny, '--weights', 'q4'])).toThrow(/--out is required/);
    expect(() => parseConvertArgs([tiny, '--weights', 'q4', '--out', 'x', '--shard-size', '1GB'])).toThrow(/between .* and 256MiB/);
    const again = await failure(() => convertCheckpoint({ source: converted.q4, out: join(scratch, 'again'), weights: 'q4', shardBytes: SHARD }));
    expect(again).toMatchObject({ code: 'BAD_INPUT', message: expect.stringMatching(/already converted/) });
    const notEmpty = await failure(() => convertCheckpoint({ source: tiny, out: converted.q8, weights: 'q4', shardBytes: SHARD }));
    expect(notEmpty).toMatchObject({ code: 'BAD_INPUT', message: expect.stringMatching(/is not empty/) });
  });

  describe('a damaged folder fails to open, naming the file', () => {
    let broken: string;
    let shard: string;
    beforeAll(() => {
      shard = readManifest(converted.q4).shards[1].file;
    });
    const damage = (how: (path: string) => void) => {
      broken = mkdtempSync(join(scratch, 'broken-'));
      cpSync(converted.q4, broken, { recursive: true });
      how(join(broken, shard));
      return broken;
    };

    it('a missing shard: MISSING_TENSOR', async () => {
      const err = await failure(() => openCheckpoint(damage((p) => unlinkSync(p))));
      expect(err.code).toBe('MISSING_TENSOR');
      expect(err.message).toContain(shard);
    });

    it('a truncated shard: TRUNCATED', async () => {
      const err = await failure(() => openCheckpoint(damage((p) => truncateSync(p, statSync(p).size - 100))));
      expect(err.code).toBe('TRUNCATED');
      expect(err.message).toContain(shard);
    });

    it('a changed byte: HASH_MISMATCH', async () => {
      const err = await failure(() => openCheckpoint(damage((p) => {
        const bytes = readFileSync(p);
        bytes[bytes.length - 7] ^= 0x10;
        writeFileSync(p, bytes);
      })));
      expect(err.code).toBe('HASH_MISMATCH');
      expect(err.message).toMatch(new RegExp(`${shard} has sha256 [0-9a-f]{64}, but omniweb.json lists`));
    });

    it('a manifest that is not one: BAD_HEADER', async () => {
      const dir = damage(() => {});
      writeFileSync(join(dir, MANIFEST_FILE), JSON.stringify({ ...readManifest(converted.q4), shards: 'many' }));
      expect(await failure(() => openCheckpoint(dir))).toMatchObject({ code: 'BAD_HEADER', message: expect.stringMatching(/"shards" is not a list/) });
    });
  });

  describe('over HTTP with a model cache', () => {
    let server: ModelServer;
    let url: string;
    let manifest: Manifest;
    const shardPath = (i: number) => `/q4/${manifest.shards[i].file}`;
    const weightRequests = () => [...server.requests.keys()].filter((p) => p !== `/q4/${MANIFEST_FILE}`);

    beforeAll(async () => {
      server = await startModelServer({ '/q4/': converted.q4 });
      url = `${server.url}q4/`;
      manifest = readManifest(converted.q4);
    });
    afterAll(async () => {
      await server.close();
    });

    async function readAll(checkpoint: Checkpoint): Promise<void> {
      for (const name of checkpoint.names()) {
        const format = checkpoint.convertedFormat(name);
        if (format) await checkpoint.readMatrix(name, format);
        else await checkpoint.readStored(name);
      }
      expect(await checkpoint.readText('config.json')).toBe(readFileSync(join(converted.q4, 'config.json'), 'utf8'));
    }

    it('the second load fetches only the manifest', async () => {
      const cache = memoryCache();
      server.resetCounts();
      const first = await openCheckpoint(url, { cache });
      await readAll(first);
      await first.close();
      for (let i = 0; i < manifest.shards.length; i++) expect(server.requests.get(shardPath(i))).toBeGreaterThan(0);
      server.resetCounts();
      const second = await openCheckpoint(url, { cache });
      await readAll(second);
      await second.close();
      expect(weightRequests()).toEqual([]);
      expect(server.requests.get(`/q4/${MANIFEST_FILE}`)).toBeGreaterThan(0);
    });

    it('a cut-off load resumes after the last good shard', async () => {
      const cache = memoryCache();
      server.resetCounts();
      server.failing.add(shardPath(2));
      const cut = await failure(() => openCheckpoint(url, { cache }));
      expect(cut.code).toBe('IO');
      expect(server.requests.get(shardPath(0))).toBeGreaterThan(0);
      server.failing.clear();
      server.resetCounts();
      const resumed = await openCheckpoint(url, { cache });
      await readAll(resumed);
      await resumed.close();
      expect(server.requests.has(shardPath(0))).toBe(false);
      expect(server.requests.has(shardPath(1))).toBe(false);
      expect(server.requests.get(shardPath(2))).toBeGreaterThan(0);
    });

    it('a full cache: the load goes on without it (the shards after the refused one read from the network) and says so', async () => {
      expect(manifest.shards.length).toBeGreaterThanOrEqual(3);
      const warnings: LoadWarning[] = [];
      const cache = memoryCache({ maxBytes: manifest.shards[0].bytes + manifest.shards[1].bytes });
      server.resetCounts();
      const checkpoint = await openCheckpoint(url, { cache, onWarning: (w) => warnings.push(w) });
      await readAll(checkpoint);
      await checkpoint.close();
      expect(warnings).toHaveLength(1);
      expect(warnings[0].kind).toBe('cache-full');
      expect(warnings[0].message).toMatch(/memory model cache is full; .* was not stored; this file is held in memory for this load, the files after it are read from the network/);
      // The refused shard was fetched whole once, as the cached ones were; the ones after it are
      // hashed, then read range by range as their tensors load.
      const whole = server.requests.get(shardPath(0))!;
      expect(server.requests.get(shardPath(2))).toBe(whole);
      for (let i = 3; i < manifest.shards.length; i++) expect(server.requests.get(shardPath(i))).toBeGreaterThan(whole);
      // What did fit was kept: the next load fetches neither of the first two shards.
      server.resetCounts();
      await (await openCheckpoint(url, { cache })).close();
      expect(server.requests.has(shardPath(0))).toBe(false);
      expect(server.requests.has(shardPath(1))).toBe(false);
    });

    it('a corrupt download is not cached', async () => {
      const cache = memoryCache();
      const dir = mkdtempSync(join(scratch, 'served-'));
      cpSync(converted.q4, dir, { recursive: true });
      const path = join(dir, manifest.shards[0].file);
      const good = readFileSync(path);
      const bad = Buffer.from(good);
      bad[bad.length - 1] ^= 1;
      writeFileSync(path, bad);
      const corrupt = await startModelServer({ '/m/': dir });
      try {
        expect((await failure(() => openCheckpoint(`${corrupt.url}m/`, { cache }))).code).toBe('HASH_MISMATCH');
        writeFileSync(path, good);
        corrupt.resetCounts();
        await (await openCheckpoint(`${corrupt.url}m/`, { cache })).close();
        expect(corrupt.requests.get(`/m/${manifest.shards[0].file}`)).toBeGreaterThan(0);
      } finally {
        await corrupt.close();
      }
    });
  });

  describe('an official (unconverted) folder with a shard missing or short', () => {
    let sharded: string;
    let shards: string[];
    beforeAll(async () => {
      sharded = join(scratch, 'sharded');
      const made = await makeCheckpoint({ shape: 'tiny', out: sharded, seed: 3, dtype: 'bf16', shardBytes: 8e6 });
      shards = made.files.map((f) => f.name).filter((n) => n.endsWith('.safetensors'));
    }, 120_000);

    it('a shard listed in the index but absent: MISSING_TENSOR naming it', async () => {
      const dir = mkdtempSync(join(scratch, 'hf-'));
      cpSync(sharded, dir, { recursive: true });
      expect(shards.length).toBeGreaterThan(1);
      unlinkSync(join(dir, shards[1]));
      const err = await failure(() => openCheckpoint(dir));
      expect(err.code).toBe('MISSING_TENSOR');
      expect(err.message).toMatch(new RegExp(`shard ${shards[1]}, listed in .* is missing`));
    });

    it('a truncated shard: TRUNCATED when opened', async () => {
      const dir = mkdtempSync(join(scratch, 'hf-'));
      cpSync(sharded, dir, { recursive: true });
      const path = join(dir, shards.at(-1)!);
      truncateSync(path, statSync(path).size - 10);
      expect((await failure(() => openCheckpoint(dir))).code).toBe('TRUNCATED');
    });
  });
});
