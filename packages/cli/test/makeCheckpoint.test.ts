import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Template } from '@huggingface/jinja';
import { checkConfigAgainstWeights, parseOmniConfig, parseOmniConfigText } from '../../core/src/config.js';
import { isOmniError } from '../../core/src/errors.js';
import { openCheckpoint, readSpeakers, TensorStore, type ByteSource, type TensorInfo } from '../../core/src/weights/index.js';
import { makeCheckpoint, parseByteSize, parseMakeCheckpointArgs } from '../src/makeCheckpoint.js';
import { checkpointLayout, type TensorPlan } from '../src/synthetic/layout.js';
import { SHAPES, shapeConfig } from '../src/synthetic/shapes.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const tsx = join(root, 'node_modules/.bin/tsx');
const main = join(root, 'packages/cli/src/main.ts');
const tinyOmni = join(root, 'fixtures/golden/tiny-omni');

interface Run { code: number; stdout: string; stderr: string }

function omniweb(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(tsx, [main, ...args], { cwd: root, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}

function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
}

/**
 * The tensors of fact sheet §2.1–§2.6, written out from its tables (not from
 * the generator): name → shape, for the 7B or the 3B sizes.
 */
function factSheetTensors(size: '7b' | '3b'): Map<string, number[]> {
  const D = size === '7b' ? 3584 : 2048;
  const V = size === '7b' ? 152064 : 151936;
  const L = size === '7b' ? 28 : 36;
  const Hq = size === '7b' ? 28 : 16;
  const Hkv = size === '7b' ? 4 : 2;
  const I = size === '7b' ? 18944 : 11008;
  const t = new Map<string, number[]>();
  /** A row "`x.weight` / `.bias` | [out, …] / [out]". */
  const wb = (prefix: string, weight: number[]) => { t.set(`${prefix}.weight`, weight); t.set(`${prefix}.bias`, [weight[0]]); };
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);

  // §2.1 thinker LLM
  t.set('thinker.model.embed_tokens.weight', [V, D]);
  for (const n of range(L)) {
    const p = `thinker.model.layers.${n}`;
    t.set(`${p}.input_layernorm.weight`, [D]);
    wb(`${p}.self_attn.q_proj`, [Hq * 128, D]);
    wb(`${p}.self_attn.k_proj`, [Hkv * 128, D]);
    wb(`${p}.self_attn.v_proj`, [Hkv * 128, D]);
    t.set(`${p}.self_attn.o_proj.weight`, [D, Hq * 128]);
    t.set(`${p}.post_attention_layernorm.weight`, [D]);
    t.set(`${p}.mlp.gate_proj.weight`, [I, D]);
    t.set(`${p}.mlp.up_proj.weight`, [I, D]);
    t.set(`${p}.mlp.down_proj.weight`, [D, I]);
  }
  t.set('thinker.model.norm.weight', [D]);
  // 7B: present. 3B: UNVERIFIED; the generator takes the documented guess "tied", so it is absent.
  if (size === '7b') t.set('thinker.lm_head.weight', [V, D]);

  // §2.2 audio encoder
  const a = 'thinker.audio_tower';
  wb(`${a}.conv1`, [1280, 128, 3]);
  wb(`${a}.conv2`, [1280, 1280, 3]);
  for (const n of range(32)) {
    const p = `${a}.layers.${n}`;
    wb(`${p}.self_attn.q_proj`, [1280, 1280]);
    t.set(`${p}.self_attn.k_proj.weight`, [1280, 1280]);
    wb(`${p}.self_attn.v_proj`, [1280, 1280]);
    wb(`${p}.self_attn.out_proj`, [1280, 1280]);
    wb(`${p}.self_attn_layer_norm`, [1280]);
    wb(`${p}.fc1`, [5120, 1280]);
    wb(`${p}.fc2`, [1280, 5120]);
    wb(`${p}.final_layer_norm`, [1280]);
  }
  wb(`${a}.ln_post`, [1280]);
  wb(`${a}.proj`, [D, 1280]);
  t.set(`${a}.audio_bos_eos_token.weight`, [2, D]);

  // §2.3 vision encoder
  const v = 'thinker.visual';
  t.set(`${v}.patch_embed.proj.weight`, [1280, 3, 2, 14, 14]);
  for (const n of range(32)) {
    const p = `${v}.blocks.${n}`;
    t.set(`${p}.norm1.weight`, [1280]);
    t.set(`${p}.norm2.weight`, [1280]);
    for (const x of ['q', 'k', 'v', 'proj']) wb(`${p}.attn.${x}`, [1280, 1280]);
    wb(`${p}.mlp.gate_proj`, [3420, 1280]);
    wb(`${p}.mlp.up_proj`, [3420, 1280]);
    wb(`${p}.mlp.down_proj`, [1280, 3420]);
  }
  t.set(`${v}.merger.ln_q.weight`, [1280]);
  wb(`${v}.merger.mlp.0`, [5120, 5120]);
  wb(`${v}.merger.mlp.2`, [D, 5120]);

  // §2.4 talker (the 3B talker's depth and widths are the UNVERIFIED 7B ones)
  wb('talker.thinker_to_talker_proj', [896, D]);
  t.set('talker.model.embed_tokens.weight', [8448, D]);
  for (const n of range(24)) {
    const p = `talker.model.layers.${n}`;
    t.set(`${p}.input_layernorm.weight`, [896]);
    wb(`${p}.self_attn.q_proj`, [1536, 896]);
    wb(`${p}.self_attn.k_proj`, [512, 896]);
    wb(`${p}.self_attn.v_proj`, [512, 896]);
    t.set(`${p}.self_attn.o_proj.weight`, [896, 1536]);
    t.set(`${p}.post_attention_layernorm.weight`, [896]);
    t.set(`${p}.mlp.gate_proj.weight`, [18944, 896]);
    t.set(`${p}.mlp.up_proj.weight`, [18944, 896]);
    t.set(`${p}.mlp.down_proj.weight`, [896, 18944]);
  }
  t.set('talker.model.norm.weight', [896]);
  t.set('talker.codec_head.weight', [8448, 896]);

  // §2.5 DiT
  const d = 'token2wav.code2wav_dit_model';
  const s = `${d}.input_embed.spk_encoder`;
  wb(`${d}.time_embed.time_mlp.0`, [1024, 256]);
  wb(`${d}.time_embed.time_mlp.2`, [1024, 1024]);
  t.set(`${d}.text_embed.codec_embed.weight`, [8194, 512]);
  wb(`${d}.input_embed.proj`, [1024, 912]);
  wb(`${s}.blocks.0.conv`, [256, 80, 5]);
  for (const n of [1, 2, 3]) {
    wb(`${s}.blocks.${n}.tdnn1.conv`, [256, 256, 1]);
    wb(`${s}.blocks.${n}.res2net_block.blocks.0.conv`, [128, 128, 3]);
    wb(`${s}.blocks.${n}.tdnn2.conv`, [256, 256, 1]);
    wb(`${s}.blocks.${n}.se_block.conv1`, [64, 256, 1]);
    wb(`${s}.blocks.${n}.se_block.conv2`, [256, 64, 1]);
  }
  wb(`${s}.mfa.conv`, [768, 768, 1]);
  wb(`${s}.asp.tdnn.conv`, [64, 2304, 1]);
  wb(`${s}.asp.conv`, [768, 64, 1]);
  wb(`${s}.fc`, [128, 1536, 1]);
  for (const n of range(22)) {
    const p = `${d}.transformer_blocks.${n}`;
    wb(`${p}.attn_norm.linear`, [6144, 1024]);
    for (const x of ['to_q', 'to_k', 'to_v', 'to_out.0']) wb(`${p}.attn.${x}`, [1024, 1024]);
    wb(`${p}.ff.ff.0`, [2048, 1024]);
    wb(`${p}.ff.ff.3`, [1024, 2048]);
  }
  wb(`${d}.norm_out.linear`, [2048, 1024]);
  wb(`${d}.proj_out`, [80, 1024]);

  // §2.6 BigVGAN
  const g = 'token2wav.code2wav_bigvgan_model';
  wb(`${g}.conv_pre`, [1536, 80, 7]);
  const ups = [[1536, 768, 11], [768, 384, 7], [384, 192, 4], [192, 96, 4], [96, 48, 4], [48, 24, 4]];
  ups.forEach((shape, i) => { t.set(`${g}.ups.${i}.0.weight`, shape); t.set(`${g}.ups.${i}.0.bias`, [shape[1]]); });
  [768, 384, 192, 96, 48, 24].forEach((c, i) => {
    [3, 7, 11].forEach((k, j) => {
      const p = `${g}.resblocks.${3 * i + j}`;
      for (const m of [0, 1, 2]) { wb(`${p}.convs1.${m}`, [c, c, k]); wb(`${p}.convs2.${m}`, [c, c, k]); }
      for (const x of range(6)) { t.set(`${p}.activations.${x}.act.alpha`, [c]); t.set(`${p}.activations.${x}.act.beta`, [c]); }
    });
  });
  t.set(`${g}.activation_post.act.alpha`, [24]);
  t.set(`${g}.activation_post.act.beta`, [24]);
  t.set(`${g}.conv_post.weight`, [1, 24, 7]);
  return t;
}

/** A tensor store over headers only (no bytes): enough for the loader's config-vs-weights check. */
function headerOnlyStore(plan: readonly TensorPlan[]): TensorStore {
  const source: ByteSource = {
    name: 'planned tensors', size: 0,
    read: () => Promise.reject(new Error('a header-only store has no data')),
    close: async () => {},
  };
  const tensors = new Map(plan.map((t): [string, { info: TensorInfo; source: ByteSource }] => [
    t.name, { info: { name: t.name, dtype: 'BF16', shape: t.shape, byteOffset: 0, byteLength: 0, file: source.name }, source },
  ]));
  return new TensorStore(tensors, [source], source.name);
}

const DIT_INV_FREQ = 'token2wav.code2wav_dit_model.rotary_embed.inv_freq';

describe('make-checkpoint layouts of 3B and 7B against the fact sheet', () => {
  for (const size of ['7b', '3b'] as const) {
    it(`${size}: every tensor of the fact sheet tables, with their shapes, and nothing else`, () => {
      const config = parseOmniConfig(shapeConfig(SHAPES[size], 'bfloat16'));
      const plan = checkpointLayout(config);
      const expected = factSheetTensors(size);
      // The one extra: the DiT rotary buffer the fact sheet says may be stored (tiny-omni stores it), head_dim 64 → 32 values.
      expect(plan.find((t) => t.name === DIT_INV_FREQ)?.shape).toEqual([32]);
      const planned = new Map(plan.filter((t) => t.name !== DIT_INV_FREQ).map((t) => [t.name, t.shape]));
      expect([...planned.keys()].sort()).toEqual([...expected.keys()].sort());
      for (const [name, shape] of expected) expect(planned.get(name), name).toEqual(shape);
      // The project's own check of config.json against tensor headers.
      checkConfigAgainstWeights(config, headerOnlyStore(plan));
    });
  }

  it('7b: the talker has the 1.351 B parameters the fact sheet counts (§2.4)', () => {
    const plan = checkpointLayout(parseOmniConfig(shapeConfig(SHAPES['7b'], 'bfloat16')));
    const talker = plan.filter((t) => t.name.startsWith('talker.')).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    expect(talker / 1e9).toBeCloseTo(1.351, 3);
  });

  it('3b: config.json says which numbers are the fact sheet\'s unverified best guesses', () => {
    const config = shapeConfig(SHAPES['3b'], 'bfloat16');
    expect(config._omniweb_note).toMatch(/UNVERIFIED/);
    expect(config._omniweb_note).toMatch(/tied/);
    expect(config._omniweb_note).toMatch(/talker/);
    expect((config.thinker_config as { text_config: { tie_word_embeddings: boolean } }).text_config.tie_word_embeddings).toBe(true);
  });
});

describe('omniweb make-checkpoint --shape tiny', () => {
  let scratch: string;
  let out: string;
  let result: Awaited<ReturnType<typeof makeCheckpoint>>;
  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'omniweb-make-'));
    out = join(scratch, 'tiny');
    result = await makeCheckpoint({ shape: 'tiny', out, seed: 7, dtype: 'bf16', shardBytes: 5e9 });
  });
  afterAll(() => { rmSync(scratch, { recursive: true }); });

  it('has exactly the tensor names and shapes of fixtures/golden/tiny-omni, stored as bf16', async () => {
    const [ours, golden] = await Promise.all([openCheckpoint(out), openCheckpoint(tinyOmni)]);
    try {
      expect(ours.names().sort()).toEqual(golden.names().sort());
      for (const name of golden.names()) {
        expect(ours.info(name).shape, name).toEqual(golden.info(name).shape);
        expect(ours.info(name).dtype).toBe('BF16');
      }
      expect(ours.shards).toEqual([join(out, 'model.safetensors')]);
    } finally {
      await Promise.all([ours.close(), golden.close()]);
    }
  });

  it('writes the config.json of tiny-omni (plus the note and its own torch_dtype) and its generation_config.json', () => {
    const ours = readJson(join(out, 'config.json'));
    const golden = readJson(join(tinyOmni, 'config.json'));
    expect(ours.torch_dtype).toBe('bfloat16');
    expect(ours._omniweb_note).toMatch(/seeded random weights/);
    const { torch_dtype: _a, _omniweb_note: _b, ...rest } = ours;
    const { torch_dtype: _c, ...goldenRest } = golden;
    expect(rest).toEqual(goldenRest);
    expect(readJson(join(out, 'generation_config.json'))).toEqual(readJson(join(tinyOmni, 'generation_config.json')));
  });

  it('passes the project loader: openCheckpoint + parseOmniConfig + checkConfigAgainstWeights', async () => {
    const checkpoint = await openCheckpoint(out);
    try {
      const config = parseOmniConfigText((await checkpoint.readText('config.json'))!);
      checkConfigAgainstWeights(config, checkpoint);
      expect(config.talker?.embeddingSize).toBe(32);
      expect(config.token2wav?.dit.ecapa.condDim).toBe(24);
    } finally {
      await checkpoint.close();
    }
  });

  it('stays under 50 MB in all and reports what it wrote', () => {
    const total = result.files.reduce((n, f) => n + f.bytes, 0);
    for (const f of result.files) expect(statSync(join(out, f.name)).size).toBe(f.bytes);
    expect(total).toBeLessThan(50e6);
    expect(result.tensorCount).toBe(708);
    // The golden README's split: thinker 9.88 M, talker 0.49 M, token2wav 0.48 M (+ the 8 rotary values it does not count).
    expect(result.parameters).toEqual({ thinker: 9876928, talker: 485648, token2wav: 475336 });
  });

  it('draws weights at the planned scales: finite, matrices N(0, 1/fan_in), norm gains ≈ 1', async () => {
    const checkpoint = await openCheckpoint(out);
    try {
      const stats = async (name: string) => {
        const x = await checkpoint.readF32(name);
        let sum = 0;
        let squares = 0;
        for (const v of x) { sum += v; squares += v * v; }
        expect(Number.isFinite(squares), name).toBe(true); // a NaN or infinity anywhere would poison the sum
        const mean = sum / x.length;
        return { mean, std: Math.sqrt(squares / x.length - mean * mean) };
      };
      const embed = await stats('thinker.model.embed_tokens.weight'); // 4.9 M values, std 1/√32
      expect(embed.mean).toBeCloseTo(0, 3);
      expect(embed.std / (1 / Math.sqrt(32))).toBeCloseTo(1, 2);
      const conv = await stats('thinker.audio_tower.conv1.weight'); // fan_in 128·3
      expect(conv.std / (1 / Math.sqrt(384))).toBeCloseTo(1, 1);
      const norm = await stats('thinker.model.layers.0.input_layernorm.weight');
      expect(Math.abs(norm.mean - 1)).toBeLessThan(0.02);
      // The rotary buffer holds its real values, as in tiny-omni (bf16 keeps 8 significant bits).
      const golden = await openCheckpoint(tinyOmni);
      try {
        const want = await golden.readF32(DIT_INV_FREQ);
        const got = await checkpoint.readF32(DIT_INV_FREQ);
        want.forEach((w, i) => expect(Math.abs(got[i] - w) / w).toBeLessThan(2 ** -8));
      } finally {
        await golden.close();
      }
    } finally {
      await checkpoint.close();
    }
  });

  it('writes a spk_dict.pt with Chelsie and Ethan, cond [enc_emb_dim] and ref_mel [1, T, 80]', () => {
    const speakers = readSpeakers(readFileSync(join(out, 'spk_dict.pt')));
    expect([...speakers.keys()]).toEqual(['Chelsie', 'Ethan']);
    expect(speakers.get('Chelsie')!.bosToken).toBe(151872);
    expect(speakers.get('Ethan')!.bosToken).toBe(151870);
    for (const speaker of speakers.values()) {
      expect(speaker.cond.shape).toEqual([24]);
      expect(speaker.refMel.shape).toEqual([1, 300, 80]);
    }
    expect(speakers.get('Chelsie')!.cond.data).not.toEqual(speakers.get('Ethan')!.cond.data);
  });

  it('writes tokenizer files with Omni\'s added special tokens and chat template', () => {
    const tokenizer = readJson(join(out, 'tokenizer.json')) as { added_tokens: { id: number; content: string }[]; model: { vocab: Record<string, number> } };
    const added = new Map(tokenizer.added_tokens.map((t) => [t.content, t.id]));
    for (const [name, id] of [['<|endoftext|>', 151643], ['<|im_start|>', 151644], ['<|im_end|>', 151645], ['<|AUDIO|>', 151646], ['<|audio_bos|>', 151647],
      ['<|audio_eos|>', 151648], ['<|vision_bos|>', 151652], ['<|vision_eos|>', 151653], ['<|IMAGE|>', 151655], ['<|VIDEO|>', 151656]] as const) {
      expect(added.get(name), name).toBe(id);
    }
    expect(added.has('<think>')).toBe(false);
    expect(Math.max(...added.values())).toBe(151664);
    expect(Object.keys(tokenizer.model.vocab)).toHaveLength(151643);
    const config = readJson(join(out, 'tokenizer_config.json')) as { added_tokens_decoder: Record<string, { content: string }>; additional_special_tokens: string[]; chat_template: string };
    expect(config.added_tokens_decoder['151655'].content).toBe('<|IMAGE|>');
    expect(config.additional_special_tokens).toContain('<|AUDIO|>');
    expect(config.additional_special_tokens).not.toContain('<|image_pad|>');
    const template = new Template((readJson(join(out, 'chat_template.json')) as { chat_template: string }).chat_template);
    expect(template.render({ messages: [{ role: 'user', content: [{ type: 'audio', audio: 'a.wav' }, { type: 'text', text: 'What is this?' }] }], add_generation_prompt: true }))
      .toBe('<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|audio_bos|><|AUDIO|><|audio_eos|>What is this?<|im_end|>\n<|im_start|>assistant\n');
    expect(template.render({ messages: [{ role: 'system', content: 'S' }, { role: 'user', content: [{ type: 'image' }, { type: 'video' }] }], add_generation_prompt: false }))
      .toBe('<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n<|vision_bos|><|IMAGE|><|vision_eos|><|vision_bos|><|VIDEO|><|vision_eos|><|im_end|>\n');
    expect(config.chat_template).toBe((readJson(join(out, 'chat_template.json')) as { chat_template: string }).chat_template);
  });

  it('is deterministic for a seed, and another seed gives other weights of the same shapes', async () => {
    const again = join(scratch, 'again');
    const other = join(scratch, 'other');
    await makeCheckpoint({ shape: 'tiny', out: again, seed: 7, dtype: 'bf16', shardBytes: 5e9 });
    await makeCheckpoint({ shape: 'tiny', out: other, seed: 8, dtype: 'bf16', shardBytes: 5e9 });
    for (const file of ['model.safetensors', 'spk_dict.pt', 'config.json', 'tokenizer.json']) {
      expect(readFileSync(join(again, file)).equals(readFileSync(join(out, file))), file).toBe(true);
    }
    const a = readFileSync(join(out, 'model.safetensors'));
    const b = readFileSync(join(other, 'model.safetensors'));
    expect(b.length).toBe(a.length);
    expect(b.equals(a)).toBe(false);
    expect(readFileSync(join(other, 'spk_dict.pt')).equals(readFileSync(join(out, 'spk_dict.pt')))).toBe(false);
  });

  it('shards by size with a model.safetensors.index.json, and the same tensors read back', async () => {
    const sharded = join(scratch, 'sharded');
    const made = await makeCheckpoint({ shape: 'tiny', out: sharded, seed: 7, dtype: 'f32', shardBytes: 4e6 });
    const index = readJson(join(sharded, 'model.safetensors.index.json')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    const shardFiles = made.files.filter((f) => f.name.endsWith('.safetensors'));
    expect(shardFiles.length).toBeGreaterThanOrEqual(3);
    expect(shardFiles[0].name).toBe(`model-00001-of-${String(shardFiles.length).padStart(5, '0')}.safetensors`);
    expect(new Set(Object.values(index.weight_map))).toEqual(new Set(shardFiles.map((f) => f.name)));
    expect(Object.keys(index.weight_map)).toEqual(Object.keys(index.weight_map).sort());
    const [ours, single] = await Promise.all([openCheckpoint(sharded), openCheckpoint(out)]);
    try {
      expect(index.metadata.total_size).toBe(ours.bytesTotal);
      expect(ours.bytesTotal).toBe(2 * single.bytesTotal); // f32 vs bf16
      for (const f of shardFiles) {
        // A shard over the limit holds one tensor that alone exceeds it (the embeddings).
        const inShard = Object.entries(index.weight_map).filter(([, file]) => file === f.name);
        if (f.bytes > 4e6 + 1e5) expect(inShard).toHaveLength(1);
      }
      // Same seed, other dtype: the f32 values round to the bf16 ones.
      const name = 'talker.model.layers.1.mlp.up_proj.weight';
      const [wide, narrow] = [await ours.readF32(name), await single.readF32(name)];
      const bits = new Uint32Array(wide.buffer.slice(0));
      const rounded = new Float32Array(new Uint32Array(bits.map((b) => ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) << 16)).buffer);
      expect(rounded).toEqual(narrow);
    } finally {
      await Promise.all([ours.close(), single.close()]);
    }
  });
});

describe('omniweb make-checkpoint flags', () => {
  function expectBadInput(run: () => unknown, message: RegExp): void {
    let caught: unknown;
    try { run(); } catch (e) { caught = e; }
    expect(isOmniError(caught, 'BAD_INPUT'), String(caught)).toBe(true);
    expect((caught as Error).message).toMatch(message);
  }

  it('parses every flag, in both spellings, with defaults', () => {
    expect(parseMakeCheckpointArgs(['--shape', '7b', '--out=/x'])).toEqual({ shape: '7b', out: '/x', seed: 0, dtype: 'bf16', shardBytes: 5e9 });
    expect(parseMakeCheckpointArgs(['--shape=tiny', '--out', 'o', '--seed', '42', '--dtype', 'f32', '--shard-size', '300MB']))
      .toEqual({ shape: 'tiny', out: 'o', seed: 42, dtype: 'f32', shardBytes: 3e8 });
    expect(parseByteSize('2GiB')).toBe(2 ** 31);
    expect(parseByteSize('1048576')).toBe(1048576);
  });

  it('rejects bad flags with BAD_INPUT naming the problem', () => {
    expectBadInput(() => parseMakeCheckpointArgs(['--out', 'o']), /--shape is required/);
    expectBadInput(() => parseMakeCheckpointArgs(['--shape', '14b', '--out', 'o']), /--shape 14b is not one of 3b, 7b, 0\.5b-thinker, tiny/);
    expectBadInput(() => parseMakeCheckpointArgs(['--shape', 'tiny']), /--out is required/);
    expectBadInput(() => parseMakeCheckpointArgs(['--shape', 'tiny', '--out', 'o', '--seed', '-1']), /--seed -1 is not an integer/);
    expectBadInput(() => parseMakeCheckpointArgs(['--shape', 'tiny', '--out', 'o', '--seed', '4294967296']), /--seed 4294967296/);
    expectBadInput(() => parseMakeCheckpointArgs(['--shape', 'tiny', '--out', 'o', '--dtype', 'f16']), /--dtype f16 is not one of bf16, f32/);
    expectBadInput(() => parseMakeCheckpointArgs(['--shape', 'tiny', '--out', 'o', '--shard-size', 'big']), /--shard-size "big" is not a size/);
    expectBadInput(() => parseMakeCheckpointArgs(['--shape', 'tiny', '--out', 'o', '--shard-size', '0']), /not a positive size/);
    expectBadInput(() => parseMakeCheckpointArgs(['--shape', 'tiny', '--shape', '7b']), /--shape is given twice/);
    expectBadInput(() => parseMakeCheckpointArgs(['--shape', 'tiny', '--out']), /--out needs a value/);
    expectBadInput(() => parseMakeCheckpointArgs(['--size', '7b']), /unknown flag --size/);
    expectBadInput(() => parseMakeCheckpointArgs(['tiny']), /unexpected argument "tiny"/);
  });

  it('refuses a non-empty output folder, and the command exits 2 with one error line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'omniweb-make-busy-'));
    try {
      writeFileSync(join(dir, 'config.json'), '{}');
      await expect(makeCheckpoint({ shape: 'tiny', out: dir, seed: 0, dtype: 'bf16', shardBytes: 5e9 })).rejects.toMatchObject({ code: 'BAD_INPUT' });
      const run = await omniweb('make-checkpoint', '--shape', 'tiny', '--out', dir);
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(run.stderr).toMatch(/^error: BAD_INPUT: make-checkpoint: --out .* is not empty \(config\.json\)/);
      const bad = await omniweb('make-checkpoint', '--shape', 'huge', '--out', join(dir, 'x'));
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/^error: BAD_INPUT: make-checkpoint: --shape huge is not one of/);
      const help = await omniweb('help');
      expect(help.stdout).toMatch(/omniweb make-checkpoint --shape 3b\|7b\|0\.5b-thinker\|tiny --out <dir>/);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('rejects bad options passed to makeCheckpoint directly', async () => {
    const out = join(tmpdir(), 'omniweb-never-written');
    const valid = { shape: 'tiny', out, seed: 0, dtype: 'bf16', shardBytes: 5e9 };
    for (const [options, message] of [
      [{ shape: '1b' }, /shape "1b" is not one of/],
      [{ dtype: 'f16' }, /dtype "f16" is not one of/],
      [{ seed: 1.5 }, /seed 1\.5 is not an integer/],
      [{ shardBytes: 0 }, /shard size 0/],
    ] as const) {
      await expect(makeCheckpoint({ ...valid, ...options } as never))
        .rejects.toMatchObject({ code: 'BAD_INPUT', message: expect.stringMatching(message) });
    }
    expect(() => statSync(out)).toThrow(); // nothing was created
  });
});
