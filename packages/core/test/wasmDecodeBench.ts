// Decode speed of a Qwen2.5-0.5B-shaped decoder on the wasm backend (not a test):
// `npx tsx packages/core/test/wasmDecodeBench.ts [f32|q8|q4] [threads]`. 24 layers, hidden
// 896, 14 query / 2 KV heads of 128, MLP 4864, a 151936-row LM head; random weights, a KV
// cache of 64 filled rows. Prints tokens per second and the weight bytes streamed per second.
import { quantize, type HostMatrix } from '../src/index.js';
import { createWasmBackend } from '../src/wasm/index.js';

const [format = 'f32', threadArg = '2'] = process.argv.slice(2) as ['f32' | 'q8' | 'q4', string];
const LAYERS = 24, HIDDEN = 896, HEADS = 14, KV_HEADS = 2, HEAD_DIM = 64, MLP = 4864, VOCAB = 151936, CACHE = 64;

function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 0.05;
  }
  return out;
}

function host(rows: number, cols: number, seed: number): HostMatrix {
  const data = values(rows * cols, seed);
  return format === 'f32' ? { format, rows, cols, data } : quantize(data, rows, cols, format, 'f16');
}

const be = await createWasmBackend({ threads: Number(threadArg) });
const shapes = { q: [HEADS * HEAD_DIM, HIDDEN], k: [KV_HEADS * HEAD_DIM, HIDDEN], v: [KV_HEADS * HEAD_DIM, HIDDEN], o: [HIDDEN, HEADS * HEAD_DIM], gate: [MLP, HIDDEN], up: [MLP, HIDDEN], down: [HIDDEN, MLP] } as const;
const hosts = Object.fromEntries(Object.entries(shapes).map(([name, [r, c]], i) => [name, host(r, c, i + 1)])) as Record<keyof typeof shapes, HostMatrix>;
const layers = Array.from({ length: LAYERS }, () => ({
  ...Object.fromEntries(Object.entries(hosts).map(([name, m]) => [name, be.weight(m)])) as Record<keyof typeof shapes, ReturnType<typeof be.weight>>,
  norm1: be.tensor(values(HIDDEN, 9).map((v) => 1 + v), [HIDDEN]),
  norm2: be.tensor(values(HIDDEN, 10).map((v) => 1 + v), [HIDDEN]),
  kCache: be.tensor(values(CACHE * KV_HEADS * HEAD_DIM, 11), [CACHE, KV_HEADS, HEAD_DIM]),
  vCache: be.tensor(values(CACHE * KV_HEADS * HEAD_DIM, 12), [CACHE, KV_HEADS, HEAD_DIM]),
}));
const head = be.weight(host(VOCAB, HIDDEN, 13));
const weightBytes = layers.reduce((n, l) => n + [l.q, l.k, l.v, l.o, l.gate, l.up, l.down].reduce((m, w) => m + w.byteSize, 0), head.byteSize);

const invFreq = Float32Array.from({ length: HEAD_DIM / 2 }, (_, j) => 1e6 ** (-(2 * j) / HEAD_DIM));
const rope = { invFreq, stream: new Int32Array(HEAD_DIM / 2), style: 'half' as const };
const x = be.tensor(values(HIDDEN, 14), [1, HIDDEN]);
const h = be.empty([1, HIDDEN]), q = be.empty([1, HEADS, HEAD_DIM]), k = be.empty([1, KV_HEADS, HEAD_DIM]), v = be.empty([1, KV_HEADS, HEAD_DIM]);
const attn = be.empty([1, HEADS, HEAD_DIM]), proj = be.empty([1, HIDDEN]), gate = be.empty([1, MLP]), up = be.empty([1, MLP]), act = be.empty([1, MLP]);
const logits = be.empty([1, VOCAB]), token = be.empty([1], 'i32');

async function step(position: number): Promise<void> {
  const positions = be.tensor(Int32Array.of(position), [1, 1]);
  for (const l of layers) {
    be.rmsnorm(x, l.norm1, 1e-6, h);
    be.linear(h, l.q, null, be.reshape(q, [1, HEADS * HEAD_DIM]));
    be.linear(h, l.k, null, be.reshape(k, [1, KV_HEADS * HEAD_DIM]));
    be.linear(h, l.v, null, be.reshape(v, [1, KV_HEADS * HEAD_DIM]));
    be.rotary(q, positions, rope, q);
    be.rotary(k, positions, rope, k);
    be.copy(k, l.kCache, 0, (CACHE - 1) * KV_HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM);
    be.copy(v, l.vCache, 0, (CACHE - 1) * KV_HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM);
    be.attention(q, l.kCache, l.vCache, { mask: { kind: 'causal', queryStart: CACHE - 1 } }, attn);
    be.linear(be.reshape(attn, [1, HEADS * HEAD_DIM]), l.o, null, proj);
    be.add(x, proj, h);
    be.copy(h, x, 0, 0, HIDDEN);
    be.rmsnorm(x, l.norm2, 1e-6, h);
    be.linear(h, l.gate, null, gate);
    be.linear(h, l.up, null, up);
    be.siluMul(gate, up, act);
    be.linear(act, l.down, null, proj);
    be.add(x, proj, h);
    be.copy(h, x, 0, 0, HIDDEN);
  }
  be.linear(x, head, null, logits);
  be.argmax(logits, token);
  await be.read(token);
  be.dispose(positions);
}

for (let i = 0; i < 3; i++) await step(i);
// Mean and best token time: other work on shared cores only ever slows a token down.
const times: number[] = [];
for (let i = 0; i < 30; i++) {
  const start = performance.now();
  await step(i);
  times.push((performance.now() - start) / 1000);
}
const report = (label: string, seconds: number) =>
  `${label} ${(1 / seconds).toFixed(1)} tok/s (${(weightBytes / seconds / 1e9).toFixed(1)} GB/s of weights)`;
const mean = times.reduce((a, b) => a + b, 0) / times.length;
console.log(`${format}, ${be.info.threads} thread(s), ${(weightBytes / 1e6).toFixed(0)} MB of weights per token: ${report('mean', mean)}, ${report('best', Math.min(...times))}`);
be.destroy();
