/**
 * The speaker dictionary `spk_dict.pt` (fact sheet §1): a torch.save file of
 * { name: { "cond": tensor, "ref_mel": tensor, "bos_token": int } }.
 */
import { OmniError } from '../errors.js';
import type { FloatDtype } from './dtypes.js';
import type { HostArray } from './tensorStore.js';
import { loadTorchFile, saveTorchFile, type TorchTensor, type TorchValue } from './torchPickle.js';

/** The speaker file's name in a checkpoint folder. */
export const SPEAKERS_FILE = 'spk_dict.pt';

export interface Speaker {
  /** Speaker embedding for the DiT (`enc_emb_dim` wide), in the shape stored ([192] or [1, 192]). */
  cond: HostArray;
  /** Reference log-mel [1, T_ref, mel_dim] for the DiT's speaker encoder. */
  refMel: HostArray;
  /** Thinker-vocabulary id the talker starts this voice with (Chelsie 151872, Ethan 151870). */
  bosToken: number;
}

function notSpeakers(file: string, what: string): OmniError {
  return new OmniError('BAD_HEADER', `${file}: ${what}; a speaker file maps each name to { "cond": tensor, "ref_mel": tensor, "bos_token": int }`);
}

function isTensor(v: TorchValue | undefined): v is TorchTensor {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Map) && (v as TorchTensor).kind === 'tensor';
}

/**
 * Reads `spk_dict.pt` bytes into speakers by name, in file order. Tensors are
 * widened to f32 whatever their storage type (F32, BF16, F16).
 */
export function readSpeakers(input: Uint8Array | ArrayBuffer, file = SPEAKERS_FILE): Map<string, Speaker> {
  const bytes = input instanceof ArrayBuffer ? new Uint8Array(input) : input;
  if (!(bytes instanceof Uint8Array)) {
    throw new OmniError('BAD_INPUT', `readSpeakers takes the bytes of ${SPEAKERS_FILE} (Uint8Array or ArrayBuffer), got ${Object.prototype.toString.call(input)}`);
  }
  const root = loadTorchFile(bytes, file);
  if (!(root instanceof Map)) throw notSpeakers(file, 'the file holds no dict');
  const speakers = new Map<string, Speaker>();
  for (const [name, entry] of root) {
    if (typeof name !== 'string') throw notSpeakers(file, `key ${name} is not a speaker name`);
    if (!(entry instanceof Map)) throw notSpeakers(file, `speaker ${name} is not a dict`);
    const cond = entry.get('cond');
    const refMel = entry.get('ref_mel');
    const bosToken = entry.get('bos_token');
    if (!isTensor(cond) || !isTensor(refMel)) throw notSpeakers(file, `speaker ${name} lacks a "cond" or "ref_mel" tensor`);
    if (typeof bosToken !== 'number' || !Number.isSafeInteger(bosToken) || bosToken < 0) {
      throw notSpeakers(file, `speaker ${name} has "bos_token" ${JSON.stringify(bosToken)}, not a token id`);
    }
    speakers.set(name, {
      cond: { dtype: 'f32', shape: [...cond.shape], data: cond.data },
      refMel: { dtype: 'f32', shape: [...refMel.shape], data: refMel.data },
      bosToken,
    });
  }
  return speakers;
}

/**
 * Serializes speakers as torch.save writes `spk_dict.pt` (see torchPickle.ts);
 * `storage` picks the tensors' element type in the file (default F32).
 */
export function writeSpeakers(speakers: ReadonlyMap<string, Speaker>, options: { storage?: FloatDtype } = {}): Uint8Array<ArrayBuffer> {
  if (!(speakers instanceof Map) || speakers.size === 0) throw new OmniError('BAD_INPUT', 'writeSpeakers takes a non-empty Map of speaker name → { cond, refMel, bosToken }');
  const storage = options.storage ?? 'F32';
  const dict = new Map<string, TorchValue>();
  const tensor = (array: HostArray | undefined, what: string): TorchTensor => {
    if (array?.dtype !== 'f32' || !(array.data instanceof Float32Array)) throw new OmniError('BAD_INPUT', `writeSpeakers: ${what} must be an f32 HostArray`);
    return { kind: 'tensor', dtype: storage, shape: array.shape, data: array.data };
  };
  for (const [name, speaker] of speakers) {
    if (typeof name !== 'string' || name === '') throw new OmniError('BAD_INPUT', `writeSpeakers: speaker name ${JSON.stringify(name)} is not a non-empty string`);
    if (!Number.isSafeInteger(speaker?.bosToken) || speaker.bosToken < 0 || speaker.bosToken >= 2 ** 31) {
      throw new OmniError('BAD_INPUT', `writeSpeakers: speaker ${name} has bosToken ${speaker?.bosToken}, not a token id`);
    }
    dict.set(name, new Map<string, TorchValue>([
      ['cond', tensor(speaker.cond, `${name}.cond`)],
      ['ref_mel', tensor(speaker.refMel, `${name}.refMel`)],
      ['bos_token', speaker.bosToken],
    ]));
  }
  return saveTorchFile(dict);
}
