/**
 * A small GGUF (v3) writer and the conversion of our Thinker checkpoint to a llama.cpp
 * `qwen2` model, so the peer runs on exactly our weights (bench only).
 *
 * File layout: "GGUF", version, tensor count, metadata count; the metadata entries (key
 * string, value type, value); one info per tensor (name, dims innermost first, ggml type,
 * data offset); zero padding to the alignment; the tensor data, each tensor starting on an
 * alignment boundary. Integers are little-endian; strings are a u64 byte length and UTF-8.
 *
 * Quantized blocks (32 values each, along the innermost dimension):
 * - Q8_0: f16 scale d, then 32 int8 q; value = d · q.
 * - Q4_0: f16 scale d, then 16 bytes; byte j holds element j (low nibble) and element
 *   j + 16 (high nibble), each stored as q + 8; value = d · q.
 * Our scales here are symmetric (d = max|x| / 127 or / 7): a valid encoding of both types.
 *
 * Our Qwen2 Linear weights are [out, in] row-major; ggml names that shape [in, out]
 * (innermost first) with the same bytes, so matrices are written as they are.
 */
import { createWriteStream } from 'node:fs';
import { readFile, rename, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { f32ToF16, type Checkpoint, type ThinkerConfig } from '@omniweb/core';

// ---- the writer

const VALUE_TYPES = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12 } as const;
type Scalar = 'u32' | 'i32' | 'f32' | 'bool' | 'string';
export type GgufValue =
  | { type: 'u32' | 'i32' | 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; of: Scalar; values: readonly (number | string | boolean)[] };

/** ggml tensor types written here, with their block size (elements) and block bytes. */
export const GGML_TYPES = {
  F32: { id: 0, block: 1, bytes: 4 },
  Q4_0: { id: 2, block: 32, bytes: 18 },
  Q8_0: { id: 8, block: 32, bytes: 34 },
} as const;
export type GgmlTypeName = keyof typeof GGML_TYPES;

export interface GgufTensor {
  name: string;
  /** ggml order: innermost (contiguous) dimension first. */
  dims: number[];
  type: GgmlTypeName;
  /** Produces the tensor's bytes when it is its turn to be written. */
  data(): Promise<Uint8Array>;
}

export function tensorBytes(type: GgmlTypeName, dims: readonly number[]): number {
  const t = GGML_TYPES[type];
  const n = dims.reduce((a, b) => a * b, 1);
  if (dims[0] % t.block !== 0) throw new Error(`${type} needs rows that are a multiple of ${t.block}; got ${dims[0]}`);
  return (n / t.block) * t.bytes;
}

/** Grows a byte buffer as little-endian values are appended. */
class ByteWriter {
  #buf = new Uint8Array(1 << 16);
  #view = new DataView(this.#buf.buffer);
  length = 0;
  #room(n: number) {
    if (this.length + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.length));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }
  u8(v: number) { this.#room(1); this.#view.setUint8(this.length, v); this.length += 1; }
  u32(v: number) { this.#room(4); this.#view.setUint32(this.length, v, true); this.length += 4; }
  i32(v: number) { this.#room(4); this.#view.setInt32(this.length, v, true); this.length += 4; }
  f32(v: number) { this.#room(4); this.#view.setFloat32(this.length, v, true); this.length += 4; }
  u64(v: number) { this.#room(8); this.#view.setBigUint64(this.length, BigInt(v), true); this.length += 8; }
  bytes(b: Uint8Array) { this.#room(b.length); this.#buf.set(b, this.length); this.length += b.length; }
  string(s: string) { const b = new TextEncoder().encode(s); this.u64(b.length); this.bytes(b); }
  zeros(n: number) { this.#room(n); this.#buf.fill(0, this.length, this.length + n); this.length += n; }
  result(): Uint8Array { return this.#buf.subarray(0, this.length); }
}

function writeScalar(w: ByteWriter, type: Scalar, v: number | string | boolean): void {
  switch (type) {
    case 'u32': w.u32(v as number); break;
    case 'i32': w.i32(v as number); break;
    case 'f32': w.f32(v as number); break;
    case 'bool': w.u8(v ? 1 : 0); break;
    case 'string': w.string(v as string); break;
  }
}

const pad = (n: number, alignment: number) => (alignment - (n % alignment)) % alignment;

/**
 * Writes a GGUF file (to `path + '.part'`, renamed when complete); tensors are produced
 * one at a time, so memory holds one tensor's bytes at most. Returns the file size.
 */
export async function writeGguf(path: string, metadata: ReadonlyArray<[string, GgufValue]>, tensors: readonly GgufTensor[], alignment = 32): Promise<number> {
  const head = new ByteWriter();
  head.bytes(new TextEncoder().encode('GGUF'));
  head.u32(3);
  head.u64(tensors.length);
  head.u64(metadata.length + 1);
  head.string('general.alignment');
  head.u32(VALUE_TYPES.u32);
  head.u32(alignment);
  for (const [key, value] of metadata) {
    head.string(key);
    head.u32(VALUE_TYPES[value.type]);
    if (value.type === 'array') {
      head.u32(VALUE_TYPES[value.of]);
      head.u64(value.values.length);
      for (const v of value.values) writeScalar(head, value.of, v);
    } else {
      writeScalar(head, value.type, value.value);
    }
  }
  let offset = 0;
  const sizes: number[] = [];
  for (const t of tensors) {
    head.string(t.name);
    head.u32(t.dims.length);
    for (const d of t.dims) head.u64(d);
    head.u32(GGML_TYPES[t.type].id);
    head.u64(offset);
    const bytes = tensorBytes(t.type, t.dims);
    sizes.push(bytes);
    offset += bytes + pad(bytes, alignment);
  }
  head.zeros(pad(head.length, alignment));

  const part = `${path}.part`;
  const out = createWriteStream(part);
  const write = async (b: Uint8Array) => { if (!out.write(b)) await once(out, 'drain'); };
  await write(head.result());
  for (const [i, t] of tensors.entries()) {
    const bytes = await t.data();
    if (bytes.length !== sizes[i]) throw new Error(`${t.name}: produced ${bytes.length} bytes, expected ${sizes[i]}`);
    await write(bytes);
    const p = pad(bytes.length, alignment);
    if (p) await write(new Uint8Array(p));
  }
  out.end();
  await once(out, 'finish');
  await rename(part, path);
  return (await stat(path)).size;
}

// ---- block quantization (rows of `cols` values, cols a multiple of 32)

function f16Bytes(view: DataView, at: number, x: number) { view.setUint16(at, f32ToF16(x), true); }

export function quantizeQ8_0(x: Float32Array): Uint8Array {
  const blocks = x.length / 32;
  const out = new Uint8Array(blocks * 34);
  const view = new DataView(out.buffer);
  const q = new Int8Array(out.buffer);
  for (let b = 0; b < blocks; b++) {
    const x0 = b * 32;
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[x0 + j]));
    const d = amax / 127;
    const inv = d > 0 ? 1 / d : 0;
    f16Bytes(view, b * 34, d);
    for (let j = 0; j < 32; j++) q[b * 34 + 2 + j] = Math.round(x[x0 + j] * inv);
  }
  return out;
}

export function quantizeQ4_0(x: Float32Array): Uint8Array {
  const blocks = x.length / 32;
  const out = new Uint8Array(blocks * 18);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    const x0 = b * 32;
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[x0 + j]));
    const d = amax / 7;
    const inv = d > 0 ? 1 / d : 0;
    f16Bytes(view, b * 18, d);
    for (let j = 0; j < 16; j++) {
      const lo = Math.max(-8, Math.min(7, Math.round(x[x0 + j] * inv))) + 8;
      const hi = Math.max(-8, Math.min(7, Math.round(x[x0 + j + 16] * inv))) + 8;
      out[b * 18 + 2 + j] = lo | (hi << 4);
    }
  }
  return out;
}

// ---- our checkpoint → a llama.cpp qwen2 model

export type GgufWeights = 'f32' | 'q8_0' | 'q4_0';
const FILE_TYPES: Record<GgufWeights, number> = { f32: 0, q4_0: 2, q8_0: 7 };
const MATRIX_TYPES: Record<GgufWeights, GgmlTypeName> = { f32: 'F32', q8_0: 'Q8_0', q4_0: 'Q4_0' };

/** HF names under `thinker.model.` → llama.cpp qwen2 names. */
function llamaName(hf: string): string | null {
  const m = /^thinker\.model\.(?:layers\.(\d+)\.)?(.+)$/.exec(hf);
  if (!m) return null;
  const [, layer, rest] = m;
  if (layer === undefined) {
    return ({ 'embed_tokens.weight': 'token_embd.weight', 'norm.weight': 'output_norm.weight' } as Record<string, string>)[rest] ?? null;
  }
  const parts: Record<string, string> = {
    input_layernorm: 'attn_norm', post_attention_layernorm: 'ffn_norm',
    'self_attn.q_proj': 'attn_q', 'self_attn.k_proj': 'attn_k', 'self_attn.v_proj': 'attn_v', 'self_attn.o_proj': 'attn_output',
    'mlp.gate_proj': 'ffn_gate', 'mlp.up_proj': 'ffn_up', 'mlp.down_proj': 'ffn_down',
  };
  const s = /^(.+)\.(weight|bias)$/.exec(rest);
  const base = s && parts[s[1]];
  return base ? `blk.${layer}.${base}.${s![2]}` : null;
}

interface TokenizerJson {
  model: { vocab: Record<string, number>; merges: (string | [string, string])[] };
  added_tokens: { id: number; content: string; special: boolean }[];
}

/**
 * The vocabulary as llama.cpp's BPE ("gpt2") loader wants it: every id up to the model's
 * vocab size (ids without a token become "[PAD<id>]", type unused), types (1 normal,
 * 3 control, 4 user-defined, 5 unused), and the merges as "left right".
 */
export function ggufVocab(tokenizer: TokenizerJson, vocabSize: number) {
  const tokens: string[] = new Array(vocabSize);
  const types: number[] = new Array(vocabSize).fill(5);
  for (const [text, id] of Object.entries(tokenizer.model.vocab)) {
    if (id < vocabSize) { tokens[id] = text; types[id] = 1; }
  }
  for (const t of tokenizer.added_tokens) {
    if (t.id < vocabSize) { tokens[t.id] = t.content; types[t.id] = t.special ? 3 : 4; }
  }
  for (let i = 0; i < vocabSize; i++) if (tokens[i] === undefined) tokens[i] = `[PAD${i}]`;
  const merges = tokenizer.model.merges.map((m) => (typeof m === 'string' ? m : `${m[0]} ${m[1]}`));
  return { tokens, types, merges };
}

/** Writes our Thinker checkpoint as a GGUF llama.cpp loads as `qwen2`; returns the file size. */
export async function thinkerToGguf(checkpoint: Checkpoint, checkpointDir: string, config: ThinkerConfig, weights: GgufWeights, path: string): Promise<number> {
  const t = config.text;
  const tokenizer = JSON.parse(await readFile(`${checkpointDir}/tokenizer.json`, 'utf8')) as TokenizerJson;
  const vocab = ggufVocab(tokenizer, t.vocab);
  const { eos, pad: padId } = config.tokens;
  const metadata: [string, GgufValue][] = [
    ['general.architecture', { type: 'string', value: 'qwen2' }],
    ['general.name', { type: 'string', value: 'omniweb synthetic 0.5b-thinker' }],
    ['general.file_type', { type: 'u32', value: FILE_TYPES[weights] }],
    ['qwen2.context_length', { type: 'u32', value: t.maxPositions }],
    ['qwen2.embedding_length', { type: 'u32', value: t.hidden }],
    ['qwen2.block_count', { type: 'u32', value: t.layers }],
    ['qwen2.feed_forward_length', { type: 'u32', value: t.intermediate }],
    ['qwen2.attention.head_count', { type: 'u32', value: t.heads }],
    ['qwen2.attention.head_count_kv', { type: 'u32', value: t.kvHeads }],
    ['qwen2.rope.freq_base', { type: 'f32', value: t.ropeTheta }],
    ['qwen2.attention.layer_norm_rms_epsilon', { type: 'f32', value: t.rmsEps }],
    ['tokenizer.ggml.model', { type: 'string', value: 'gpt2' }],
    ['tokenizer.ggml.pre', { type: 'string', value: 'qwen2' }],
    ['tokenizer.ggml.tokens', { type: 'array', of: 'string', values: vocab.tokens }],
    ['tokenizer.ggml.token_type', { type: 'array', of: 'i32', values: vocab.types }],
    ['tokenizer.ggml.merges', { type: 'array', of: 'string', values: vocab.merges }],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: false }],
  ];
  if (eos !== null) metadata.push(['tokenizer.ggml.eos_token_id', { type: 'u32', value: eos }]);
  if (padId !== null) {
    metadata.push(['tokenizer.ggml.padding_token_id', { type: 'u32', value: padId }]);
    metadata.push(['tokenizer.ggml.bos_token_id', { type: 'u32', value: padId }]);
  }
  const tensors: GgufTensor[] = [];
  for (const name of checkpoint.names()) {
    const target = llamaName(name);
    if (!target) continue;
    const shape = checkpoint.info(name).shape;
    const matrix = shape.length === 2;
    const type: GgmlTypeName = matrix ? MATRIX_TYPES[weights] : 'F32';
    tensors.push({
      name: target,
      dims: [...shape].reverse(),
      type,
      async data() {
        const x = await checkpoint.readF32(name);
        if (type === 'F32') return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
        return type === 'Q8_0' ? quantizeQ8_0(x) : quantizeQ4_0(x);
      },
    });
  }
  const expected = 2 + t.layers * 12;
  if (tensors.length !== expected) throw new Error(`found ${tensors.length} Thinker LM tensors to convert, expected ${expected}`);
  return writeGguf(path, metadata, tensors);
}
