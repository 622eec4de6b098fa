/**
 * The ECAPA-TDNN speaker encoder inside the DiT's input embedding (fact sheet §8.2 step 3):
 * a reference log-mel [T_ref, mel] → one speaker vector [1, enc_dim].
 *
 * encode: TDNN (conv, ReLU) → SE-Res2Net blocks (TDNN 1×1 → Res2Net → TDNN 1×1 →
 * squeeze-excitation, plus the block's input) → MFA (a TDNN over the SE-Res2Net outputs side by
 * side) → attentive statistics pooling (a softmax over time weights the mean and std) → fc.
 *
 * Every conv is torch's padding="same" with reflect padding. Tensors stay time-major [L, C], so a
 * concat along channels is never built: a conv over a concat is the sum of one conv per part with
 * that part's column block of the weight (split at load), and the Res2Net's split along channels
 * is tdnn1 split by output rows.
 */
import { OmniError, type Backend, type DitConfig, type Tensor, type Weight } from '@omniweb/core';
import { columns, Scratch, type WeightLoader } from './weights.js';

type EcapaConfig = DitConfig['ecapa'];

/** A conv (padding "same", reflect) over one input or the parts of a channel concat, + bias; ReLU after when it is a TDNN. */
interface Conv {
  /** One column block of the torch weight per input part, each [Cout, Cin_part·kernel]. */
  parts: Weight[];
  bias: Tensor;
  kernel: number;
  dilation: number;
}

interface SeRes2NetBlock {
  /** tdnn1 (1×1) split by output rows into the Res2Net's `scale` channel groups. */
  tdnn1: Conv[];
  /** The Res2Net convs of groups 1 … scale − 1. */
  res2net: Conv[];
  /** tdnn2 (1×1) over the groups side by side. */
  tdnn2: Conv;
  squeeze: Conv;
  excite: Conv;
}

export interface EcapaWeights {
  first: Conv;
  blocks: SeRes2NetBlock[];
  /** Multi-layer feature aggregation over the SE-Res2Net outputs side by side. */
  mfa: Conv;
  /** Attentive statistics pooling: a TDNN over [features, mean, std], tanh, then a 1×1 conv to per-channel scores. */
  aspTdnn: Conv;
  aspConv: Conv;
  /** fc over [weighted mean, weighted std]. */
  fc: Conv;
}

const PREFIX = 'token2wav.code2wav_dit_model.input_embed.spk_encoder.';

/** Reads the speaker encoder's weights through the DiT's loader, checking every shape against the DiT config. */
export async function loadEcapaWeights(loader: WeightLoader, config: DitConfig): Promise<EcapaWeights> {
  const e = config.ecapa;
  const { channels, kernelSizes, dilations, res2netScale: scale } = e;
  const last = channels.length - 1;
  for (const [i, k] of kernelSizes.entries()) {
    // torch's "same" pads (d·(k − 1)) / 2 on each side only when that is whole.
    if ((dilations[i] * (k - 1)) % 2 !== 0) {
      throw new OmniError('UNSUPPORTED_CONFIG', `enc_kernel_sizes[${i}] ${k} with enc_dilations[${i}] ${dilations[i]} needs uneven "same" padding, which this encoder does not implement`);
    }
  }
  const blockWidths = channels.slice(1, last);
  if (blockWidths.some((c, i) => c !== channels[i])) {
    throw new OmniError('UNSUPPORTED_CONFIG', `enc_channels ${JSON.stringify(channels)}: each SE-Res2Net block adds its input back, so its width must equal the previous block's`);
  }
  if (blockWidths.reduce((a, b) => a + b, 0) !== channels[last]) {
    throw new OmniError('UNSUPPORTED_CONFIG', `enc_channels ${JSON.stringify(channels)}: the MFA takes the SE-Res2Net outputs side by side, so the last width must be their sum`);
  }
  const conv = async (name: string, cout: number, splits: readonly number[], kernel: number, dilation: number, because: string): Promise<Conv> => {
    const cin = splits.reduce((a, b) => a + b, 0);
    const w = await loader.values(`${name}.weight`, [cout, cin, kernel], because);
    let first = 0;
    const parts = splits.map((width) => {
      const part = loader.matrix(columns(w, cout, cin * kernel, first * kernel, width * kernel), cout, width * kernel);
      first += width;
      return part;
    });
    return { parts, bias: await loader.vector(`${name}.bias`, cout, because), kernel, dilation };
  };
  /** tdnn1 read once, split by output rows into the Res2Net's channel groups. */
  const rowGroups = async (name: string, cout: number, cin: number, because: string): Promise<Conv[]> => {
    const w = await loader.values(`${name}.weight`, [cout, cin, 1], because);
    const bias = await loader.values(`${name}.bias`, [cout], because);
    const group = cout / scale;
    return Array.from({ length: scale }, (_, g) => ({
      parts: [loader.matrix(w.subarray(g * group * cin, (g + 1) * group * cin), group, cin)],
      bias: loader.tensor(bias.subarray(g * group, (g + 1) * group), [group]),
      kernel: 1,
      dilation: 1,
    }));
  };
  const first = await conv(`${PREFIX}blocks.0.conv`, channels[0], [config.melDim], kernelSizes[0], dilations[0], `enc_channels[0] ${channels[0]}, mel_dim ${config.melDim}, enc_kernel_sizes[0]`);
  const blocks: SeRes2NetBlock[] = [];
  for (let i = 1; i < last; i++) {
    const p = `${PREFIX}blocks.${i}.`;
    const c = channels[i];
    const group = c / scale;
    const because = `enc_channels[${i}] ${c}, enc_res2net_scale ${scale}`;
    const res2net: Conv[] = [];
    for (let j = 0; j < scale - 1; j++) {
      res2net.push(await conv(`${p}res2net_block.blocks.${j}.conv`, group, [group], kernelSizes[i], dilations[i], `${because}, enc_kernel_sizes[${i}]`));
    }
    blocks.push({
      tdnn1: await rowGroups(`${p}tdnn1.conv`, c, channels[i - 1], because),
      res2net,
      tdnn2: await conv(`${p}tdnn2.conv`, c, new Array<number>(scale).fill(group), 1, 1, because),
      squeeze: await conv(`${p}se_block.conv1`, e.seChannels, [c], 1, 1, `enc_se_channels ${e.seChannels}, ${because}`),
      excite: await conv(`${p}se_block.conv2`, c, [e.seChannels], 1, 1, `enc_se_channels ${e.seChannels}, ${because}`),
    });
  }
  const mfaWidth = channels[last];
  const fcName = loader.source.has(`${PREFIX}fc.conv.weight`) ? `${PREFIX}fc.conv` : `${PREFIX}fc`; // older checkpoints nest it (fact sheet §2.5)
  return {
    first,
    blocks,
    mfa: await conv(`${PREFIX}mfa.conv`, mfaWidth, blockWidths, kernelSizes[last], dilations[last], `enc_channels ${JSON.stringify(channels)}`),
    aspTdnn: await conv(`${PREFIX}asp.tdnn.conv`, e.attentionChannels, [mfaWidth, mfaWidth, mfaWidth], 1, 1, `enc_attention_channels ${e.attentionChannels}, 3 × ${mfaWidth}`),
    aspConv: await conv(`${PREFIX}asp.conv`, mfaWidth, [e.attentionChannels], 1, 1, `enc_attention_channels ${e.attentionChannels}`),
    fc: await conv(fcName, e.outDim, [mfaWidth, mfaWidth], 1, 1, `enc_dim ${e.outDim}, 2 × ${mfaWidth}`),
  };
}

/** The fewest reference-mel frames the reflect padding of every conv allows (padding < length). */
export function minReferenceFrames(config: EcapaConfig): number {
  return Math.max(...config.kernelSizes.map((k, i) => (config.dilations[i] * (k - 1)) / 2)) + 1;
}

export class SpeakerEncoder {
  constructor(readonly backend: Backend, readonly config: EcapaConfig, readonly weights: EcapaWeights) {}

  /** The speaker vector [1, enc_dim] of a reference mel [T_ref, mel] (the caller frees it). */
  encode(refMel: Tensor): Tensor {
    const b = this.backend;
    const w = this.weights;
    const s = new Scratch(b);
    const frames = refMel.shape[0];
    if (refMel.shape.length !== 2 || frames < minReferenceFrames(this.config)) {
      throw new OmniError('BAD_INPUT', `the speaker encoder needs a reference mel [T_ref ≥ ${minReferenceFrames(this.config)}, mel], got [${refMel.shape.join(', ')}]`);
    }
    try {
      let x = this.#tdnn(s, [refMel], w.first);
      const blockOutputs: Tensor[] = [];
      for (const block of w.blocks) {
        x = this.#seRes2Net(s, x, block);
        blockOutputs.push(x);
      }
      const features = this.#tdnn(s, blockOutputs, w.mfa); // [L, C]
      const speaker = this.#attentiveStatisticsPooling(s, features); // [1, enc_dim]
      s.free(speaker);
      return speaker;
    } catch (e) {
      s.free();
      throw e;
    }
  }

  #seRes2Net(s: Scratch, x: Tensor, block: SeRes2NetBlock): Tensor {
    const b = this.backend;
    // Res2Net: group 0 passes through; group i > 0 is a TDNN of (group i + output of group i − 1), from i = 2 on.
    const groups = block.tdnn1.map((conv) => this.#tdnn(s, [x], conv));
    const outputs = [groups[0]];
    for (let i = 1; i < groups.length; i++) {
      const input = i === 1 ? groups[1] : s.temp(b.add(groups[i], outputs[i - 1]));
      outputs.push(this.#tdnn(s, [input], block.res2net[i - 1]));
    }
    const y = this.#tdnn(s, outputs, block.tdnn2); // [L, C]
    // Squeeze-excitation: per-channel gains from the time mean.
    const channels = y.shape[1];
    const squeezed = this.#tdnn(s, [s.temp(b.avgPoolRows(y, y.shape[0]))], block.squeeze);
    const gains = s.temp(b.unary(this.#conv(s, [squeezed], block.excite), { kind: 'sigmoid' })); // [1, C]
    const excited = s.temp(b.mul(y, b.reshape(gains, [channels])));
    return s.temp(b.add(excited, x));
  }

  /**
   * Mean and std over time, first plain (they join the features as extra channels of the
   * attention TDNN), then weighted by a softmax over time of per-channel scores; fc of both.
   */
  #attentiveStatisticsPooling(s: Scratch, x: Tensor): Tensor {
    const b = this.backend;
    const w = this.weights;
    const frames = x.shape[0];
    const ones = s.temp(b.tensor(new Float32Array(frames).fill(1), [1, frames]));
    const mean = s.temp(b.avgPoolRows(x, frames));
    const std = this.#std(s, x, mean, (t) => s.temp(b.avgPoolRows(t, frames)));
    // The TDNN over [x, mean, std]: the mean and std parts are one row, added to every frame.
    const [featureWeight, meanWeight, stdWeight] = w.aspTdnn.parts;
    const statistics = s.temp(b.add(s.temp(b.linear(mean, meanWeight)), s.temp(b.linear(std, stdWeight, w.aspTdnn.bias))));
    const projected = s.temp(b.conv1d(x, featureWeight, null, { kernel: 1 }));
    const hidden = s.temp(b.unary(s.temp(b.add(projected, b.reshape(statistics, [statistics.size]))), { kind: 'relu' }));
    const scores = this.#conv(s, [s.temp(b.unary(hidden, { kind: 'tanh' }))], w.aspConv); // [L, C]
    // Softmax over time is a softmax over the rows of the channel-major view.
    const attention = s.temp(b.transpose(s.temp(b.softmax(s.temp(b.transpose(scores))))));
    const weightedSum = (t: Tensor) => s.temp(b.matmul(ones, s.temp(b.mul(attention, t)))); // Σ_t a·t = 1ᵀ(a ⊙ t)
    const weightedMean = weightedSum(x);
    const weightedStd = this.#std(s, x, weightedMean, weightedSum);
    return this.#conv(s, [weightedMean, weightedStd], w.fc);
  }

  /** sqrt(max(E[(x − mean)²], 1e-12)) with E given (plain or attention-weighted over time), as the reference clamps. */
  #std(s: Scratch, x: Tensor, mean: Tensor, expectation: (t: Tensor) => Tensor): Tensor {
    const b = this.backend;
    const negated = s.temp(b.unary(mean, { kind: 'affine', scale: -1, shift: 0 }));
    const centered = s.temp(b.add(x, b.reshape(negated, [negated.size])));
    const variance = expectation(s.temp(b.mul(centered, centered)));
    return s.temp(b.unary(s.temp(b.unary(variance, { kind: 'clamp', min: 1e-12, max: Infinity })), { kind: 'sqrt' }));
  }

  /** conv + ReLU. */
  #tdnn(s: Scratch, parts: Tensor[], conv: Conv): Tensor {
    return s.temp(this.backend.unary(this.#conv(s, parts, conv), { kind: 'relu' }));
  }

  /** The conv over the parts side by side: the sum of each part's conv with its column block, + bias. */
  #conv(s: Scratch, parts: Tensor[], conv: Conv): Tensor {
    const b = this.backend;
    const opts = { kernel: conv.kernel, dilation: conv.dilation, padding: (conv.dilation * (conv.kernel - 1)) / 2, padMode: 'reflect' } as const;
    let sum = s.temp(b.conv1d(parts[0], conv.parts[0], conv.bias, opts));
    for (let i = 1; i < parts.length; i++) sum = s.temp(b.add(sum, s.temp(b.conv1d(parts[i], conv.parts[i], null, opts))));
    return sum;
  }
}
