// An independent f64 Qwen2-decoder forward written from the fact sheet (§5.1, §6), for configs the
// golden files do not cover (several KV heads, head_dim ≠ hidden / heads, a tied head).
import type { Synthetic } from './helpers.js';

/** Logits of every row for `ids` at positions stream-major [3 · L]. */
export function referenceLogits(synthetic: Synthetic, ids: ArrayLike<number>, positions: Int32Array): Float64Array[] {
  const { hidden, layers, heads, kvHeads, headDim, intermediate, vocab, rmsEps, ropeTheta, mropeSection } = synthetic.config.text;
  const w = (name: string) => synthetic.tensors.get(`thinker.${name}`)!;
  const L = ids.length;
  const half = headDim / 2;
  const matvec = (m: Float32Array, rows: number, cols: number, x: Float64Array, bias?: Float32Array) => {
    const y = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let sum = bias ? bias[r] : 0;
      for (let c = 0; c < cols; c++) sum += m[r * cols + c] * x[c];
      y[r] = sum;
    }
    return y;
  };
  const rmsnorm = (x: Float64Array, g: Float32Array) => {
    const ms = x.reduce((s, v) => s + v * v, 0) / x.length;
    return x.map((v, i) => (v / Math.sqrt(ms + rmsEps)) * g[i]);
  };
  const streamOf = (j: number) => (j < mropeSection[0] ? 0 : j < mropeSection[0] + mropeSection[1] ? 1 : 2);
  const rotate = (v: Float64Array, nHeads: number, t: number) => {
    for (let h = 0; h < nHeads; h++) {
      for (let j = 0; j < half; j++) {
        const angle = positions[streamOf(j) * L + t] * ropeTheta ** (-(2 * j) / headDim);
        const a = v[h * headDim + j];
        const b = v[h * headDim + j + half];
        v[h * headDim + j] = a * Math.cos(angle) - b * Math.sin(angle);
        v[h * headDim + j + half] = b * Math.cos(angle) + a * Math.sin(angle);
      }
    }
  };
  const embed = w('model.embed_tokens.weight');
  let x = Array.from({ length: L }, (_, t) => Float64Array.from(embed.subarray(ids[t] * hidden, (ids[t] + 1) * hidden)));
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}.`;
    const normed = x.map((row) => rmsnorm(row, w(`${p}input_layernorm.weight`)));
    const q = normed.map((h) => matvec(w(`${p}self_attn.q_proj.weight`), heads * headDim, hidden, h, w(`${p}self_attn.q_proj.bias`)));
    const k = normed.map((h) => matvec(w(`${p}self_attn.k_proj.weight`), kvHeads * headDim, hidden, h, w(`${p}self_attn.k_proj.bias`)));
    const v = normed.map((h) => matvec(w(`${p}self_attn.v_proj.weight`), kvHeads * headDim, hidden, h, w(`${p}self_attn.v_proj.bias`)));
    q.forEach((row, t) => rotate(row, heads, t));
    k.forEach((row, t) => rotate(row, kvHeads, t));
    x = x.map((row, t) => {
      const attended = new Float64Array(heads * headDim);
      for (let h = 0; h < heads; h++) {
        const g = Math.floor(h / (heads / kvHeads)); // GQA: query head h reads kv head g
        const scores = Array.from({ length: t + 1 }, (_, s) => {
          let dot = 0;
          for (let d = 0; d < headDim; d++) dot += q[t][h * headDim + d] * k[s][g * headDim + d];
          return dot / Math.sqrt(headDim);
        });
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const z = e.reduce((a, b) => a + b);
        for (let s = 0; s <= t; s++) for (let d = 0; d < headDim; d++) attended[h * headDim + d] += (e[s] / z) * v[s][g * headDim + d];
      }
      const o = matvec(w(`${p}self_attn.o_proj.weight`), hidden, heads * headDim, attended);
      const mid = row.map((val, i) => val + o[i]);
      const h2 = rmsnorm(mid, w(`${p}post_attention_layernorm.weight`));
      const gate = matvec(w(`${p}mlp.gate_proj.weight`), intermediate, hidden, h2);
      const up = matvec(w(`${p}mlp.up_proj.weight`), intermediate, hidden, h2);
      const act = gate.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[i]);
      const down = matvec(w(`${p}mlp.down_proj.weight`), hidden, intermediate, act);
      return mid.map((val, i) => val + down[i]);
    });
  }
  const head = synthetic.tensors.get('thinker.lm_head.weight') ?? embed;
  return x.map((row) => matvec(head, vocab, hidden, rmsnorm(row, w('model.norm.weight'))));
}
