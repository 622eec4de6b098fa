/** The two voices of `spk_dict.pt` (fact sheet §1), with random embeddings and reference mels. */
import { type DitConfig, type Speaker } from '@omniweb/core';
import { normalStream } from './random.js';

/** Speaker name → the talker's text-BOS token for that voice (fact sheet §1). */
export const VOICES = { Chelsie: 151872, Ethan: 151870 } as const;
/** Reference mel length: 3 s at 100 frames/s. The real T_ref is UNVERIFIED (fact sheet §1). */
export const REF_MEL_FRAMES = 300;
/**
 * Natural-log mel amplitudes of speech sit well below 0 (silence is near
 * ln(1e-5) ≈ −11.5); values around −5 ± 2 look like quiet speech to the DiT.
 */
const REF_MEL_MEAN = -5;
const REF_MEL_STD = 2;

export function syntheticSpeakers(dit: DitConfig, seed: number): Map<string, Speaker> {
  const speakers = new Map<string, Speaker>();
  for (const [name, bosToken] of Object.entries(VOICES)) {
    const cond = new Float32Array(dit.ecapa.condDim);
    normalStream(seed, `spk_dict.pt/${name}/cond`)(cond);
    const refMel = new Float32Array(REF_MEL_FRAMES * dit.melDim);
    normalStream(seed, `spk_dict.pt/${name}/ref_mel`)(refMel);
    for (let i = 0; i < refMel.length; i++) refMel[i] = REF_MEL_MEAN + REF_MEL_STD * refMel[i];
    speakers.set(name, {
      cond: { dtype: 'f32', shape: [dit.ecapa.condDim], data: cond },
      refMel: { dtype: 'f32', shape: [1, REF_MEL_FRAMES, dit.melDim], data: refMel },
      bosToken,
    });
  }
  return speakers;
}
