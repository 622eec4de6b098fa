// The SDK's whole path against the reference: golden prompt p1 (audio + image + text, as prompt
// ids with one placeholder per item), its raw waveform and image, greedy decoding on the golden
// tiny checkpoint (no tokenizer files, no voices) → the reference's 8 greedy ids.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCase, type HostArray } from '@omniweb/core';
import { Omni } from '../src/index.js';
import { GOLDEN, collect, rejects } from './helpers.js';

let omni: Omni;
beforeAll(async () => { omni = await Omni.load({ model: `${GOLDEN}tiny-omni`, device: 'wasm' }); });
afterAll(async () => { await omni?.close(); });

const ints = (a: HostArray) => Array.from(a.data as ArrayLike<number>);

/** The prompt as the chat template writes it: each run of a placeholder id collapsed to one. */
function collapsePlaceholders(ids: number[], placeholders: ReadonlySet<number>): number[] {
  return ids.filter((id, i) => !(placeholders.has(id) && ids[i - 1] === id));
}

describe('golden p1 through a session (wasm, f32)', () => {
  it('expands the placeholders, encodes the media and generates the reference\'s greedy ids', async () => {
    const p1 = await readCase(`${GOLDEN}thinker_p1.safetensors`);
    const audio = await readCase(`${GOLDEN}audio.safetensors`);
    const image = await readCase(`${GOLDEN}image.safetensors`);
    const { tokens } = omni.config.thinker;
    const expanded = ints(p1.get('input_ids')!);
    const ids = collapsePlaceholders(expanded, new Set([tokens.audio, tokens.image, tokens.video]));
    expect(ids.length).toBeLessThan(expanded.length);
    const rgb = image.get('image_rgb')!;
    const expected = ints(p1.get('generated_ids')!);

    expect(omni.canSpeak).toBe(false);
    const session = omni.session({ maxNewTokens: expected.length });
    const reader = collect(session);
    const result = await session.send({
      ids,
      audio: { samples: audio.get('waveform')!.data as Float32Array, sampleRate: 16_000 },
      image: { height: rgb.shape[0], width: rgb.shape[1], data: rgb.data as Uint8Array },
    });
    await rejects(session.send({ text: 'Hello' }), 'BAD_INPUT', /no tokenizer files .* send the prompt as ids/);
    await session.close();
    await reader.done;
    expect(result.stats.promptTokens).toBe(expanded.length);
    expect(result.ids).toEqual(expected);
    // Without a tokenizer the text events still carry every reply id.
    expect(reader.turn(1).filter((e) => e.type === 'text').map((e) => (e as { id: number }).id)).toEqual(expected.filter((id) => id !== tokens.eos));
  });
});
