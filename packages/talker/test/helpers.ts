// Shared test plumbing: the tiny checkpoint, the golden talker case, the Thinker's reply that feeds the Talker.
import { fileURLToPath } from 'node:url';
import {
  loadOmniConfig, openCheckpoint, readCase, readSpeakers, writeSpeakers,
  type Backend, type HostArray, type OmniConfig, type Speaker, type Tensor, type WeightFormat,
} from '@omniweb/core';
import { createOracleBackend } from '@omniweb/kernels';
import { Thinker, ThinkerSession, type MediaEmbeddings, type WeightSource } from '@omniweb/thinker';
import { Talker, type ReplyToken, type TalkerPrompt } from '../src/index.js';

export const GOLDEN = fileURLToPath(new URL('../../../fixtures/golden/', import.meta.url));
export const TINY = `${GOLDEN}tiny-omni`;

export interface Models {
  config: OmniConfig;
  thinker: Thinker;
  talker: Talker;
}

/** The tiny Thinker and Talker on one backend; `wrap` may alter the tensors read (behaviour tests). */
export async function loadModels(backend: Backend, format: WeightFormat = 'f32', wrap?: (source: WeightSource) => WeightSource): Promise<Models> {
  const checkpoint = await openCheckpoint(TINY);
  try {
    const config = await loadOmniConfig(checkpoint, ['thinker', 'talker']);
    const source = wrap ? wrap(checkpoint) : checkpoint;
    const thinker = await Thinker.load(backend, source, config.thinker, { format });
    const talker = await Talker.load(thinker, source, config.talker!, { format });
    return { config, thinker, talker };
  } finally {
    await checkpoint.close();
  }
}

function array(c: Map<string, HostArray>, name: string): HostArray {
  const a = c.get(name);
  if (!a) throw new Error(`golden array ${name} is missing`);
  return a;
}
const f32 = (c: Map<string, HostArray>, name: string) => array(c, name).data as Float32Array;
const i32 = (c: Map<string, HostArray>, name: string) => array(c, name).data as Int32Array;

export interface TalkerCase {
  /** Stream-major [3 · (P + 2)]. */
  positions: Int32Array;
  ropeDeltas: number;
  projIn: Float32Array; // [P + 2, embeddingSize]
  projOut: Float32Array; // [P + 2, hidden]
  step1ProjIn: Float32Array;
  /** Raw logits of every forward call (prefill + decode steps), [calls, vocab]. */
  stepLogits: Float32Array;
  calls: number;
  codes: number[];
  thinkerIds: number[];
  /** The voice as spk_dict.pt would hold it, read back through readSpeakers. */
  speaker: Speaker;
}

export async function talkerCase(): Promise<TalkerCase> {
  const c = await readCase(`${GOLDEN}talker_p1.safetensors`);
  const logits = array(c, 'step_logits_last');
  const speakers = readSpeakers(writeSpeakers(new Map([['Chelsie', {
    cond: array(c, 'speaker_cond'),
    refMel: array(c, 'speaker_ref_mel'),
    bosToken: i32(c, 'speaker_bos_token')[0],
  }]])));
  return {
    positions: i32(c, 'talker_position_ids'),
    ropeDeltas: i32(c, 'talker_rope_deltas')[0],
    projIn: f32(c, 'prefill_proj_in'),
    projOut: f32(c, 'prefill_proj_out'),
    step1ProjIn: f32(c, 'step1_proj_in'),
    stepLogits: logits.data as Float32Array,
    calls: logits.shape[0],
    codes: Array.from(i32(c, 'codec_codes')),
    thinkerIds: Array.from(i32(c, 'thinker_generated_ids')),
    speaker: speakers.get('Chelsie')!,
  };
}

export interface ThinkerReply {
  prompt: TalkerPrompt;
  /** Reply tokens r₀ … r_{N−2} (the last one is never fed), with the ids the Thinker generated. */
  tokens: ReplyToken[];
  ids: number[];
}

/** The golden prompt p1 (audio + image): ids, positions and media rows of thinker_p1 (golden README). */
async function promptP1() {
  const [thinkerCase, audio, image] = await Promise.all(['thinker_p1', 'audio', 'image'].map((n) => readCase(`${GOLDEN}${n}.safetensors`)));
  const [t, h, w] = i32(image, 'image_grid_thw');
  const featureLength = Array.from(i32(audio, 'feature_attention_mask')).reduce((s, v) => s + v, 0);
  return {
    ids: i32(thinkerCase, 'input_ids'),
    positions: i32(thinkerCase, 'position_ids'),
    inputsEmbeds: f32(thinkerCase, 'inputs_embeds'),
    imageGrids: [[t, h, w] as const],
    audioFeatureLengths: [featureLength],
  };
}

/** Media rows: the golden merged embeddings at each kind's placeholders (the encoders are tested on their own). */
export function goldenMedia(backend: Backend, config: OmniConfig, ids: Int32Array, inputsEmbeds: Float32Array): MediaEmbeddings {
  const hidden = config.thinker.text.hidden;
  const media: MediaEmbeddings = {};
  for (const kind of ['audio', 'image', 'video'] as const) {
    const rows: number[] = [];
    ids.forEach((id, k) => { if (id === config.thinker.tokens[kind]) rows.push(k); });
    if (rows.length === 0) continue;
    const data = new Float32Array(rows.length * hidden);
    rows.forEach((k, i) => data.set(inputsEmbeds.subarray(k * hidden, (k + 1) * hidden), i * hidden));
    media[kind] = backend.tensor(data, [rows.length, hidden]);
  }
  return media;
}

export const REPLY_TOKENS = 8;

/**
 * Runs our Thinker on p1 and hands each reply token to `onToken` as the session
 * feeds it: TokenEvent j carries H and E of token j − 1, so event 0 (the last
 * prompt row) is skipped and the last id is never fed.
 */
export async function runThinker(
  thinker: Thinker, config: OmniConfig,
  onPrompt: (prompt: TalkerPrompt) => void, onToken: (token: ReplyToken, id: number) => void | Promise<void>,
): Promise<number[]> {
  const p1 = await promptP1();
  const backend = thinker.backend;
  const session = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: p1.ids.length + REPLY_TOKENS } });
  const media = goldenMedia(backend, config, p1.ids, p1.inputsEmbeds);
  try {
    const prefill = await session.prefill({ ids: p1.ids, media, positions: p1.positions }, { hidden: true, embeddings: true });
    onPrompt({
      inputIds: p1.ids, imageGrids: p1.imageGrids, audioFeatureLengths: p1.audioFeatureLengths,
      thinkerHidden: prefill.hidden!, thinkerEmbeddings: prefill.embeddings!,
    });
    const ids: number[] = [];
    for await (const event of session.generate({ maxNewTokens: REPLY_TOKENS, hidden: true, embedding: true })) {
      if (ids.length > 0) await onToken({ hidden: event.hidden!, embedding: event.embedding! }, ids[ids.length - 1]);
      ids.push(event.id);
    }
    return ids;
  } finally {
    session.dispose();
    for (const t of Object.values(media)) backend.dispose(t as Tensor);
  }
}

let cachedReply: Promise<ThinkerReply> | null = null;

/** The p1 reply of the f32 Thinker on the oracle, computed once per test file. */
export function thinkerReply(): Promise<ThinkerReply> {
  cachedReply ??= (async () => {
    const backend = createOracleBackend();
    const { config, thinker, talker } = await loadModels(backend);
    talker.dispose();
    let prompt: TalkerPrompt | null = null;
    const tokens: ReplyToken[] = [];
    const ids = await runThinker(thinker, config, (p) => { prompt = p; }, (token) => { tokens.push(token); });
    thinker.dispose();
    return { prompt: prompt!, tokens, ids };
  })();
  return cachedReply;
}

export async function readAll(backend: Backend, t: Tensor): Promise<Float32Array> {
  return (await backend.read(t)) as Float32Array;
}

/** Collects every code of an iterator. */
export async function collect(codes: AsyncIterable<number>): Promise<number[]> {
  const out: number[] = [];
  for await (const code of codes) out.push(code);
  return out;
}
