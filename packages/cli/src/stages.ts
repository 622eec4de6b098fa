/**
 * The model stages of `omniweb run-case`, in the order data flows: media → positions →
 * encoders → Thinker → Talker → token2wav. Each stage only converts between the reference's
 * array layouts and the packages' own API; the computing is the packages'.
 */
import { OmniError, type Backend, type HostArray, type Tensor } from '@omniweb/core';
import { AudioEncoder } from '@omniweb/audio-encoder';
import {
  DEFAULT_IMAGE_PREPROCESS, framesSource, logMel, processImage, videoFromSource, type RgbImage,
} from '@omniweb/media';
import { Thinker, ThinkerSession, type MediaEmbeddings, type PrefillResult } from '@omniweb/thinker';
import { thinkerTmropeConfig, tmropePositions, type GridThw, type TmropeInputs } from '@omniweb/tmrope';
import { Talker, type TalkerStream } from '@omniweb/talker';
import { VisionEncoder } from '@omniweb/vision-encoder';
import { Token2Wav } from '@omniweb/vocoder';
import type { Stage, StageContext } from './runCase.js';

const f32 = (shape: number[], data: Float32Array): HostArray => ({ dtype: 'f32', shape, data });
const i32 = (shape: number[], data: Int32Array): HostArray => ({ dtype: 'i32', shape, data });
const ints = (a: HostArray): number[] => Array.from(a.data as ArrayLike<number>);

function floats(ctx: StageContext, name: string): Float32Array {
  const a = ctx.array(name);
  if (a.dtype !== 'f32') throw new OmniError('WRONG_DTYPE', `${name} must be float32, the case holds ${a.dtype}`);
  return a.data as Float32Array;
}

/** [rows, cols] → [cols, rows]: the reference's channel-first arrays against our time-major ones. */
function transpose(data: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

function grids(a: HostArray): GridThw[] {
  const v = ints(a);
  if (a.shape.length !== 2 || a.shape[1] !== 3) throw new OmniError('SHAPE_MISMATCH', `a grid array must be [n, 3], got [${a.shape.join(', ')}]`);
  return Array.from({ length: a.shape[0] }, (_, i) => [v[3 * i], v[3 * i + 1], v[3 * i + 2]] as GridThw);
}

function rgb(a: HostArray, name: string): RgbImage {
  if (a.dtype !== 'u8' || a.shape.length !== 3 || a.shape[2] !== 3) {
    throw new OmniError('SHAPE_MISMATCH', `${name} must be uint8 [height, width, 3], got ${a.dtype} [${a.shape.join(', ')}]`);
  }
  return { height: a.shape[0], width: a.shape[1], data: a.data as Uint8Array };
}

async function readTensor(backend: Backend, t: Tensor): Promise<Float32Array> {
  return (await backend.read(t)) as Float32Array;
}

/** Valid frames of each clip of `feature_attention_mask` [clips, frames]. */
function featureLengths(mask: HostArray): number[] {
  const v = ints(mask);
  const [clips, frames] = mask.shape.length === 2 ? mask.shape : [1, mask.shape[0]];
  return Array.from({ length: clips }, (_, c) => v.slice(c * frames, (c + 1) * frames).reduce((s, x) => s + x, 0));
}

// The golden cases pad to 3000 frames (WhisperFeatureExtractor's 30 s default); only the
// valid frames reach the encoder, so the padded length changes no output (golden README).
const FEATURE_SAMPLES = 480_000;

const audioFeatures: Stage = {
  name: 'media: log-mel features',
  needs: ['waveform'],
  run(ctx) {
    const mel = logMel(floats(ctx, 'waveform'), { pad: true, config: { nSamples: FEATURE_SAMPLES } });
    const bins = mel.features.length / mel.frames;
    ctx.emit('input_features', f32([1, bins, mel.frames], transpose(mel.features, mel.frames, bins)));
    const mask = new Int32Array(mel.frames);
    mask.fill(1, 0, mel.validFrames);
    ctx.emit('feature_attention_mask', i32([1, mel.frames], mask));
  },
};

function imageStage(prefix: '' | 'resize_case_'): Stage {
  return {
    name: `media: image patches${prefix ? ' (resize case)' : ''}`,
    needs: [`${prefix}image_rgb`],
    run(ctx) {
      const image = processImage(rgb(ctx.array(`${prefix}image_rgb`), `${prefix}image_rgb`));
      ctx.emit(`${prefix}pixel_values`, f32([image.pixelValues.length / 1176, 1176], image.pixelValues));
      ctx.emit(`${prefix}image_grid_thw`, i32([1, 3], Int32Array.from(image.gridThw)));
    },
  };
}

const videoInputs: Stage = {
  name: 'media: video patches',
  needs: ['frames_rgb'],
  run(ctx) {
    const a = ctx.array('frames_rgb');
    if (a.dtype !== 'u8' || a.shape.length !== 4 || a.shape[3] !== 3) {
      throw new OmniError('SHAPE_MISMATCH', `frames_rgb must be uint8 [frames, height, width, 3], got ${a.dtype} [${a.shape.join(', ')}]`);
    }
    const [count, height, width] = a.shape;
    const size = height * width * 3;
    const frames = Array.from({ length: count }, (_, i) => ({ height, width, data: (a.data as Uint8Array).subarray(i * size, (i + 1) * size) }));
    // Frames keep the image pixel limits, as the golden processor ran (golden README, video).
    const video = videoFromSource(framesSource(frames, ctx.options.fps ?? 2), {
      minPixels: DEFAULT_IMAGE_PREPROCESS.minPixels, maxPixels: DEFAULT_IMAGE_PREPROCESS.maxPixels,
    });
    ctx.emit('pixel_values_videos', f32([video.patches, video.patchDim], video.pixelValues));
    ctx.emit('video_grid_thw', i32([1, 3], Int32Array.from(video.gridThw)));
    ctx.emit('second_per_grid_ts', f32([1], Float32Array.of(video.secondPerGrid)));
  },
};

/**
 * The media sizes tmrope needs besides the ids (grids, audio lengths), or null when the case
 * has media tokens whose sizes it does not give.
 */
function mediaLayout(ctx: StageContext, ids: readonly number[]): Omit<TmropeInputs, 'inputIds'> | null {
  const { tokens } = ctx.config.thinker;
  const lacking = [
    ids.includes(tokens.image) && !ctx.has('image_grid_thw') && 'image_grid_thw',
    ids.includes(tokens.video) && !ctx.has('video_grid_thw') && 'video_grid_thw',
    ids.includes(tokens.audio) && !ctx.has('feature_attention_mask') && 'feature_attention_mask',
  ].filter(Boolean);
  if (lacking.length > 0) {
    ctx.log(`  the case has media tokens without ${lacking.join(', ')}`);
    return null;
  }
  return {
    imageGrids: ctx.has('image_grid_thw') ? grids(ctx.array('image_grid_thw')) : [],
    videoGrids: ctx.has('video_grid_thw') ? grids(ctx.array('video_grid_thw')) : [],
    secondPerGrids: ctx.has('second_per_grid_ts') ? Array.from(floats(ctx, 'second_per_grid_ts')) : [],
    audioFeatureLengths: ctx.has('feature_attention_mask') ? featureLengths(ctx.array('feature_attention_mask')) : [],
    useAudioInVideo: ctx.options.useAudioInVideo,
  };
}

const positions: Stage = {
  name: 'tmrope: position ids',
  needs: ['input_ids'],
  run(ctx) {
    const ids = ints(ctx.array('input_ids'));
    const layout = mediaLayout(ctx, ids);
    // Without the media sizes the case's own position_ids (if any) stand.
    if (!layout) return;
    const result = tmropePositions({ inputIds: ids, ...layout }, thinkerTmropeConfig(ctx.config.thinker));
    ctx.emit('position_ids', i32([3, 1, ids.length], result.positionIds));
    ctx.emit('rope_deltas', i32([1, 1], Int32Array.of(result.ropeDeltas)));
  },
};

const audioEncoder: Stage = {
  name: 'audio encoder',
  needs: ['input_features', 'feature_attention_mask'],
  async run(ctx) {
    const backend = await ctx.backend();
    const encoder = await AudioEncoder.load(backend, ctx.checkpoint, ctx.config.thinker.audio, { format: ctx.options.weights });
    const features = ctx.array('input_features');
    const [clips, bins, frames] = features.shape;
    const lengths = featureLengths(ctx.array('feature_attention_mask'));
    const rows: Float32Array[] = [];
    try {
      for (let c = 0; c < clips; c++) {
        const clip = (features.data as Float32Array).subarray(c * bins * frames, (c + 1) * bins * frames);
        const out = await encoder.encode({ features: transpose(clip, bins, frames), frames, melBins: bins, validFrames: lengths[c] });
        rows.push(await readTensor(backend, out));
        backend.dispose(out);
      }
    } finally {
      encoder.dispose();
    }
    const width = ctx.config.thinker.audio.outputDim;
    const all = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
    rows.reduce((at, r) => { all.set(r, at); return at + r.length; }, 0);
    ctx.emit('audio_embeds', f32([all.length / width, width], all));
  },
};

function visionStage(kind: 'image' | 'video'): Stage {
  const [pixels, grid, out] = kind === 'image'
    ? ['pixel_values', 'image_grid_thw', 'image_embeds']
    : ['pixel_values_videos', 'video_grid_thw', 'video_embeds'];
  return {
    name: `vision encoder (${kind})`,
    needs: [pixels, grid],
    async run(ctx) {
      const backend = await ctx.backend();
      const encoder = await VisionEncoder.load(backend, ctx.checkpoint, ctx.config.thinker.vision, { format: ctx.options.weights });
      try {
        const all = floats(ctx, pixels);
        const patchDim = ctx.array(pixels).shape[1];
        let at = 0;
        const inputs = grids(ctx.array(grid)).map((gridThw) => {
          const n = gridThw[0] * gridThw[1] * gridThw[2] * patchDim;
          const pixelValues = all.subarray(at, at + n);
          at += n;
          return { pixelValues, gridThw };
        });
        if (at !== all.length) throw new OmniError('SHAPE_MISMATCH', `${grid} covers ${at / patchDim} patches, ${pixels} has ${all.length / patchDim}`);
        const result = await encoder.encode(inputs);
        const width = result.embeddings.shape[1];
        ctx.emit(out, f32([result.embeddings.shape[0], width], await readTensor(backend, result.embeddings)));
        backend.dispose(result.embeddings);
      } finally {
        encoder.dispose();
      }
    },
  };
}

/** Media rows for the Thinker: our encoders' outputs, else the case's merged inputs_embeds at the pad tokens. */
function thinkerMedia(ctx: StageContext, backend: Backend, ids: number[]): { media: MediaEmbeddings; tensors: Tensor[] } {
  const { tokens, text } = ctx.config.thinker;
  const media: MediaEmbeddings = {};
  const tensors: Tensor[] = [];
  for (const kind of ['audio', 'image', 'video'] as const) {
    const pads = ids.flatMap((id, t) => (id === tokens[kind] ? [t] : []));
    if (pads.length === 0) continue;
    const own = `${kind}_embeds`;
    if (ctx.has(own)) {
      const a = ctx.array(own);
      media[kind] = backend.tensor(a.data as Float32Array, [a.shape[0], a.shape[1]]);
      tensors.push(media[kind] as Tensor);
    } else if (ctx.has('inputs_embeds')) {
      const merged = floats(ctx, 'inputs_embeds');
      const rows = new Float32Array(pads.length * text.hidden);
      pads.forEach((t, i) => rows.set(merged.subarray(t * text.hidden, (t + 1) * text.hidden), i * text.hidden));
      media[kind] = backend.tensor(rows, [pads.length, text.hidden]);
      tensors.push(media[kind] as Tensor);
    } else {
      throw new OmniError('BAD_INPUT', `input_ids hold ${pads.length} ${kind} tokens, but the case has neither the ${kind} inputs nor inputs_embeds`);
    }
  }
  return { media, tensors };
}

/**
 * The Talker speaks when the case names a voice (speaker_bos_token) and the checkpoint has a
 * talker: it starts after the prefill and consumes each reply token as the Thinker makes it.
 */
async function startTalker(
  ctx: StageContext, model: Thinker, ids: number[], prefill: PrefillResult,
): Promise<{ talker: Talker; stream: TalkerStream; codes: Promise<number[]> } | null> {
  if (!ctx.has('speaker_bos_token') || !ctx.config.talker) return null;
  const layout = mediaLayout(ctx, ids);
  if (!layout) throw new OmniError('BAD_INPUT', 'the Talker needs the media sizes of the prompt (grids, feature_attention_mask) to place its positions');
  const talker = await Talker.load(model, ctx.checkpoint, ctx.config.talker, { format: ctx.options.weights });
  const recorded = ctx.has('codec_codes') ? ctx.array('codec_codes').shape.at(-1)! + 1 : undefined;
  const stream = talker.start(
    { inputIds: ids, ...layout, thinkerHidden: prefill.hidden!, thinkerEmbeddings: prefill.embeddings! },
    {
      speaker: { bosToken: ints(ctx.array('speaker_bos_token'))[0] },
      sampling: { temperature: 0 },
      maxNewTokens: ctx.options.talkerMaxNewTokens ?? recorded,
    },
  );
  const codes = (async () => {
    const out: number[] = [];
    for await (const code of stream.codes()) out.push(code);
    return out;
  })();
  return { talker, stream, codes };
}

const thinker: Stage = {
  name: 'thinker (+ talker when a voice is given)',
  needs: ['input_ids', 'position_ids'],
  async run(ctx) {
    const backend = await ctx.backend();
    const ids = ints(ctx.array('input_ids'));
    const positions = Int32Array.from(ints(ctx.array('position_ids')));
    const maxNewTokens = ctx.options.maxNewTokens ?? (ctx.has('generated_ids') ? ctx.array('generated_ids').shape.at(-1)! : 8);
    const model = await Thinker.load(backend, ctx.checkpoint, ctx.config.thinker, { format: ctx.options.weights });
    const { media, tensors } = thinkerMedia(ctx, backend, ids);
    const storage = ctx.options.kvCache;
    const session = new ThinkerSession(model, { cache: { kind: 'plain', capacity: ids.length + maxNewTokens, storage } });
    let speech: Awaited<ReturnType<typeof startTalker>> = null;
    try {
      // Per-position argmax needs every row's logits: one full pass, argmax on the device.
      const state = model.createRunState(ids.length, 'all');
      const cache = model.createCache({ kind: 'plain', capacity: ids.length, storage });
      try {
        const last = await model.forward(state, cache, { ids: Int32Array.from(ids), media, positions });
        const argmax = backend.argmax(state.logits);
        ctx.emit('logits_last', f32([last.length], last));
        ctx.emit('logits_argmax', i32([ids.length], (await backend.read(argmax)) as Int32Array));
        backend.dispose(argmax);
      } finally {
        state.dispose();
        cache.dispose();
      }
      const prefill = await session.prefill({ ids, media, positions }, { hidden: true, embeddings: true });
      speech = await startTalker(ctx, model, ids, prefill);
      const generated: number[] = [];
      for await (const event of session.generate({ maxNewTokens, hidden: !!speech, embedding: !!speech })) {
        // An event carries H and E of the token fed to make it: the previous reply token (§7.2).
        if (speech && generated.length > 0) speech.stream.push({ hidden: event.hidden!, embedding: event.embedding! });
        generated.push(event.id);
      }
      ctx.emit('generated_ids', i32([1, generated.length], Int32Array.from(generated)));
      if (speech) {
        speech.stream.endOfText();
        const codes = await speech.codes;
        ctx.emit('codec_codes', i32([1, codes.length], Int32Array.from(codes)));
      }
    } finally {
      speech?.stream.dispose();
      speech?.talker.dispose();
      session.dispose();
      for (const t of tensors) backend.dispose(t);
      model.dispose();
    }
  },
};

function voice(ctx: StageContext) {
  return { cond: ctx.array('speaker_cond'), refMel: ctx.array('speaker_ref_mel') };
}

async function loadToken2Wav(ctx: StageContext, backend: Backend): Promise<Token2Wav> {
  if (!ctx.config.token2wav) throw new OmniError('UNSUPPORTED_CONFIG', `${ctx.options.model} has no token2wav section: it cannot speak`);
  // The reference runs token2wav in float32 (fact sheet §1); --weights applies to the Thinker side.
  return Token2Wav.load(backend, ctx.checkpoint, ctx.config.token2wav, { format: 'f32' });
}

const token2wav: Stage = {
  name: 'token2wav (DiT + BigVGAN)',
  needs: ['codec_codes', 'speaker_cond', 'speaker_ref_mel'],
  async run(ctx) {
    const backend = await ctx.backend();
    const model = await loadToken2Wav(ctx, backend);
    try {
      const codes = ints(ctx.array('codec_codes'));
      const noise = ctx.has('ode_initial_noise') ? floats(ctx, 'ode_initial_noise') : undefined;
      const mel = await model.mel(codes, voice(ctx), { noise });
      const melDim = model.dit.config.melDim;
      const frames = mel.length / melDim;
      ctx.emit('dit_mel', f32([1, melDim, frames], transpose(mel, frames, melDim)));
      const wave = await model.synthesize(codes, voice(ctx), { noise });
      ctx.emit('waveform', f32([wave.length], wave));
    } finally {
      model.dispose();
    }
  },
};

const bigvgan: Stage = {
  name: 'BigVGAN',
  needs: ['bigvgan_mel_in'],
  async run(ctx) {
    const backend = await ctx.backend();
    const model = await loadToken2Wav(ctx, backend);
    try {
      const a = ctx.array('bigvgan_mel_in');
      const [, melDim, frames] = a.shape;
      const mel = backend.tensor(transpose(a.data as Float32Array, melDim, frames), [frames, melDim]);
      const wave = await model.bigvgan.forward(mel);
      ctx.emit('bigvgan_wav', f32([wave.size], await readTensor(backend, wave)));
      backend.dispose(wave);
      backend.dispose(mel);
    } finally {
      model.dispose();
    }
  },
};

export const STAGES: readonly Stage[] = [
  audioFeatures, imageStage(''), imageStage('resize_case_'), videoInputs, positions,
  audioEncoder, visionStage('image'), visionStage('video'), thinker, token2wav, bigvgan,
];
