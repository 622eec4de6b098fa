import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, writeFileSync, copyFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OmniError } from '../src/errors.js';
import { dequantize, f16ToF32, f32ToF16, narrowScales, quantize } from '../src/quant.js';
import {
  blobSource, bytesSource, openCheckpoint, openSafetensors, readCase, writeSafetensors, type HostArray,
} from '../src/weights/index.js';

const golden = fileURLToPath(new URL('../../../fixtures/golden/', import.meta.url));
const tinyOmni = join(golden, 'tiny-omni');

function f32(shape: number[], data: number[]): HostArray {
  return { dtype: 'f32', shape, data: Float32Array.from(data) };
}

/** Builds a safetensors file by hand, for dtypes our writer never emits. */
function rawFile(tensors: { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[]): Uint8Array {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const t of tensors) { out.set(t.bytes, at); at += t.bytes.length; }
  return out;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (!(e instanceof OmniError)) throw e;
    return e.code;
  }
}

describe('safetensors reader', () => {
  it('opens tiny-omni (708 tensors) and reads an embedding and a layer weight', async () => {
    const ckpt = await openCheckpoint(tinyOmni);
    try {
      expect(ckpt.names().length).toBe(708);
      const embed = ckpt.info('thinker.model.embed_tokens.weight');
      expect(embed.shape).toEqual([151936, 32]);
      const q = await ckpt.readMatrix('thinker.model.layers.0.self_attn.q_proj.weight', 'f32');
      expect([q.rows, q.cols]).toEqual([32, 32]);
      // The fixture's init draws matrices with std ≤ 0.2: values are finite and small but not all zero.
      const data = q.data as Float32Array;
      expect(data.some((v) => v !== 0)).toBe(true);
      expect(data.every((v) => Number.isFinite(v) && Math.abs(v) < 2)).toBe(true);
      const config = JSON.parse((await ckpt.readText('config.json'))!);
      expect(config.thinker_config.text_config.hidden_size).toBe(32);
    } finally {
      await ckpt.close();
    }
  });

  it('flattens conv weights to [out, in·kernel] and quantizes to q8/q4 consistently with f32', async () => {
    const ckpt = await openCheckpoint(join(tinyOmni, 'model.safetensors'));
    try {
      const name = 'thinker.audio_tower.conv1.weight';
      const [out, inCh, k] = ckpt.info(name).shape;
      const ref = await ckpt.readMatrix(name, 'f32');
      expect([ref.rows, ref.cols]).toEqual([out, inCh * k]);
      for (const format of ['q8', 'q4'] as const) {
        const m = await ckpt.readMatrix(name, format);
        if (m.format !== format) throw new Error('format');
        const back = dequantize(m);
        let err = 0, norm = 0;
        for (let i = 0; i < back.length; i++) { err += (back[i] - ref.data[i]) ** 2; norm += ref.data[i] ** 2; }
        expect(Math.sqrt(err / norm)).toBeLessThan(format === 'q8' ? 0.01 : 0.2);
      }
    } finally {
      await ckpt.close();
    }
  });

  it('quantizes to q8/q4 with f16 scales, and turns to f32 ones at the first scale beyond f16', async () => {
    const [rows, cols] = [6, 40];
    const values = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.7) * (1 + (i % 5)));
    const huge = Float32Array.from(values);
    huge[4 * cols + 3] = 1e7; // row 4: its group's scale (1e7 / 7 or / 127) is past f16's 65504
    // Blocks of one row (160 bytes of f32), so rows 0–3 are quantized before row 4 is read.
    const file = writeSafetensors(new Map([['plain', f32([rows, cols], [...values])], ['huge', f32([rows, cols], [...huge])]]));
    const store = await openSafetensors(file, { matrixBlockBytes: 4 * cols });
    for (const format of ['q8', 'q4'] as const) {
      const plain = await store.readMatrix('plain', format);
      if (plain.format !== format) throw new Error('format');
      const f16 = quantize(values, rows, cols, format, 'f16');
      expect(plain.scales).toBeInstanceOf(Uint16Array);
      expect([...plain.scales]).toEqual([...f16.scales]);
      expect([...plain.data]).toEqual([...f16.data]);

      const mixed = await store.readMatrix('huge', format);
      if (mixed.format !== format) throw new Error('format');
      expect(mixed.scales).toBeInstanceOf(Float32Array);
      const before = quantize(huge.subarray(0, 4 * cols), 4, cols, format, 'f16');
      const after = quantize(huge.subarray(4 * cols), 2, cols, format, 'f32');
      expect([...mixed.scales]).toEqual([...Array.from(before.scales, f16ToF32), ...after.scales]);
      expect([...mixed.data]).toEqual([...before.data, ...after.data]);
      expect(Number.isFinite(dequantize(mixed)[4 * cols + 3])).toBe(true);
    }
  });

  it('narrows stored f32 scales to f16 only where every one is a half exactly', () => {
    const halves = Float32Array.of(0, 0.5, f16ToF32(f32ToF16(0.1)), 65504);
    expect([...narrowScales(halves)]).toEqual([...Array.from(halves, f32ToF16)]);
    for (const odd of [0.1, 1e5, NaN, Infinity]) {
      const scales = Float32Array.of(0.5, odd);
      expect(narrowScales(scales), String(odd)).toBe(scales);
    }
  });

  it('decodes F16 and BF16 to f32 and keeps F16 bits for the f16 format', async () => {
    const values = [1.5, -2, 0.333251953125, 65504];
    const f16 = Uint16Array.from(values, f32ToF16);
    // The bf16 bits are made by truncating f32, so pick values with exact bf16 forms.
    const bf16Values = [1.5, -2, 0.33203125, 65280];
    const bf16 = Uint16Array.from(bf16Values, (v) => new Uint32Array(Float32Array.of(v).buffer)[0] >>> 16);
    const file = rawFile([
      { name: 'h', dtype: 'F16', shape: [2, 2], bytes: new Uint8Array(f16.buffer) },
      { name: 'b', dtype: 'BF16', shape: [2, 2], bytes: new Uint8Array(bf16.buffer) },
    ]);
    const store = await openSafetensors(file);
    expect([...(await store.readF32('h'))]).toEqual(values.map((v) => f16ToF32(f32ToF16(v))));
    expect([...(await store.readF32('b'))]).toEqual(bf16Values);
    const m = await store.readMatrix('h', 'f16');
    expect([...(m.data as Uint16Array)]).toEqual([...f16]);
  });

  it('round-trips case arrays through writeSafetensors (i32 stored as I64)', async () => {
    const entries: [string, HostArray][] = [
      ['x', f32([2, 3], [1, 2, 3, 4, 5, 6.5])],
      ['ids', { dtype: 'i32', shape: [3], data: Int32Array.of(-1, 151644, 2 ** 31 - 1) }],
      ['rgb', { dtype: 'u8', shape: [2], data: Uint8Array.of(0, 255) }],
    ];
    const bytes = writeSafetensors(entries);
    const store = await openSafetensors(bytes);
    expect(store.info('ids').dtype).toBe('I64');
    const back = await readCase(bytesSource(bytes));
    expect([...back.keys()]).toEqual(['x', 'ids', 'rgb']);
    for (const [name, a] of entries) {
      expect(back.get(name)!.dtype).toBe(a.dtype);
      expect(back.get(name)!.shape).toEqual(a.shape);
      expect([...back.get(name)!.data]).toEqual([...a.data]);
    }
  });

  it('reads a golden case file with I64 arrays as Int32Array', async () => {
    const arrays = await readCase(join(golden, 'thinker_p1.safetensors'));
    const ids = arrays.get('input_ids')!;
    expect(ids.dtype).toBe('i32');
    expect(ids.shape).toEqual([1, 152]);
    expect(ids.data).toBeInstanceOf(Int32Array);
    expect(ids.data[0]).toBe(151644); // <|im_start|>
  });

  it('refuses I64 values outside int32 and names the tensor and value', async () => {
    const big = new BigInt64Array([1n, 2n ** 40n]);
    const file = rawFile([{ name: 'big', dtype: 'I64', shape: [2], bytes: new Uint8Array(big.buffer) }]);
    await expect(readCase(file)).rejects.toThrow(/big holds 1099511627776 at element 1/);
    expect(await codeOf(readCase(file))).toBe('UNSUPPORTED_DTYPE');
  });

  it('reads through a Blob source', async () => {
    const bytes = writeSafetensors([['x', f32([3], [7, 8, 9])]]);
    const store = await openSafetensors(blobSource(new Blob([bytes]), 'x.safetensors'));
    expect([...(await store.readF32('x'))]).toEqual([7, 8, 9]);
  });

  it('reports progress per tensor up to the total', async () => {
    const bytes = writeSafetensors([['a', f32([4], [1, 2, 3, 4])], ['b', f32([2], [5, 6])]]);
    const seen: number[] = [];
    const store = await openSafetensors(bytes, { onProgress: (p) => { seen.push(p.bytesDone); expect(p.bytesTotal).toBe(24); } });
    await store.readF32('a');
    await store.readF32('b');
    expect(seen).toEqual([16, 24]);
  });

  it('opens a sharded checkpoint through its index and names the shard of a missing tensor', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'omniweb-shards-'));
    try {
      writeFileSync(join(dir, 'model-00001-of-00002.safetensors'), writeSafetensors([['a', f32([2], [1, 2])]]));
      writeFileSync(join(dir, 'model-00002-of-00002.safetensors'), writeSafetensors([['b', f32([1], [3])]]));
      const index = { metadata: { total_size: 12 }, weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } };
      writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
      const ckpt = await openCheckpoint(dir);
      expect(ckpt.shards.length).toBe(2);
      expect([...(await ckpt.readF32('b'))]).toEqual([3]);
      await expect(ckpt.readF32('c')).rejects.toThrow(/tensor c is not in .*model\.safetensors\.index\.json \(2 shards\)/);
      await ckpt.close();

      index.weight_map.b = 'model-00001-of-00002.safetensors';
      writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
      await expect(openCheckpoint(dir)).rejects.toThrow(/tensor b: .* puts it in shard model-00001-of-00002.safetensors/);

      index.weight_map.b = 'model-00002-of-00002.safetensors';
      (index.weight_map as Record<string, string>).c = 'model-00009-of-00009.safetensors';
      writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
      const err = await openCheckpoint(dir).catch((e) => e);
      expect(err).toBeInstanceOf(OmniError);
      expect(err.code).toBe('MISSING_TENSOR');
      expect(err.message).toMatch(/shard model-00009-of-00009.safetensors, listed in .* for 1 tensors \(e.g. c\)/);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('finds model.safetensors in a folder without an index, and fails with IO on an empty folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'omniweb-single-'));
    try {
      expect(await codeOf(openCheckpoint(dir))).toBe('IO');
      copyFileSync(join(golden, 'token2wav.safetensors'), join(dir, 'model.safetensors'));
      const ckpt = await openCheckpoint(dir);
      expect(ckpt.names().length).toBeGreaterThan(0);
      await ckpt.close();
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});
