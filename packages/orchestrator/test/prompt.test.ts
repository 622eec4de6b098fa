// Turn prompts: the chat template's rendering for the first turn, only the new messages later,
// the previous reply closed first, positions continuing the conversation's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directoryFiles, loadOmniConfig, openCheckpoint, type OmniConfig } from '@omniweb/core';
import { OMNI_SPEECH_SYSTEM_PROMPT, loadTokenizer, type OmniTokenizer } from '@omniweb/tokenizer';
import { thinkerTmropeConfig, tmropePositions } from '@omniweb/tmrope';
import type { MediaLayout } from '../src/inputs.js';
import { PromptBuilder, systemText } from '../src/prompt.js';
import { makeTiny, throws } from '../../sdk/test/helpers.js';

let tiny: Awaited<ReturnType<typeof makeTiny>>;
let tokenizer: OmniTokenizer;
let config: OmniConfig;
beforeAll(async () => {
  tiny = await makeTiny();
  tokenizer = await loadTokenizer(directoryFiles(tiny.dir));
  const checkpoint = await openCheckpoint(tiny.dir);
  config = await loadOmniConfig(checkpoint);
  await checkpoint.close();
});
afterAll(() => tiny?.remove());

const noMedia: MediaLayout = { audioFeatureLengths: [], imageGrids: [], videoGrids: [], secondPerGrids: [] };
const STOPS = () => new Set([tokenizer.tokenId('<|im_end|>'), tokenizer.tokenId('<|endoftext|>')]);

describe('PromptBuilder', () => {
  it('first turn: the whole rendering, with the speech system prompt when speaking', () => {
    const builder = new PromptBuilder(tokenizer, config.thinker, systemText(true, undefined), true);
    const prompt = builder.build({ text: 'Hi!' }, noMedia, { length: 0, nextPosition: 0, pending: null }, STOPS());
    expect(tokenizer.decode(prompt.ids)).toBe(`<|im_start|>system\n${OMNI_SPEECH_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n`);
    expect(Array.from(prompt.positions.subarray(0, prompt.ids.length))).toEqual(Array.from(prompt.ids, (_, i) => i));
  });

  it('later turns: the unfed reply token, the end of that message, the user turn; positions go on from the cache', () => {
    const builder = new PromptBuilder(tokenizer, config.thinker, systemText(false, 'Be brief.'), false);
    const word = tokenizer.encode(' sure')[0];
    const prompt = builder.build({ text: 'Two?' }, noMedia, { length: 40, nextPosition: 40, pending: word }, STOPS());
    expect(tokenizer.decode(prompt.ids)).toBe(' sure<|im_end|>\n<|im_start|>user\nTwo?<|im_end|>\n<|im_start|>assistant\n');
    const n = prompt.ids.length;
    for (let s = 0; s < 3; s++) expect(Array.from(prompt.positions.subarray(s * n, (s + 1) * n))).toEqual(Array.from({ length: n }, (_, i) => 40 + i));
    // A reply that ended with its stop token is closed once.
    const closed = builder.build({ text: 'Two?' }, noMedia, { length: 40, nextPosition: 40, pending: tokenizer.tokenId('<|im_end|>') }, STOPS());
    expect(tokenizer.decode(closed.ids)).toBe('<|im_end|>\n<|im_start|>user\nTwo?<|im_end|>\n<|im_start|>assistant\n');
  });

  it('media: placeholders expanded, TMRoPE positions shifted past the conversation\'s largest', () => {
    const builder = new PromptBuilder(tokenizer, config.thinker, systemText(false, undefined), false);
    const layout: MediaLayout = { ...noMedia, imageGrids: [[1, 4, 6]], audioFeatureLengths: [100] };
    const prompt = builder.build({ text: 'What is this?' }, layout, { length: 30, nextPosition: 57, pending: null }, STOPS());
    const image = tokenizer.tokenId('<|IMAGE|>');
    const audio = tokenizer.tokenId('<|AUDIO|>');
    expect(prompt.ids.filter((id) => id === image)).toHaveLength(6);
    expect(prompt.ids.filter((id) => id === audio)).toHaveLength(25);
    const alone = tmropePositions({ inputIds: prompt.ids, ...layout }, thinkerTmropeConfig(config.thinker)).positionIds;
    expect(Array.from(prompt.positions)).toEqual(Array.from(alone, (p) => p + 57));
  });

  it('refuses ids that disagree with the media, and a system prompt with speech', () => {
    const builder = new PromptBuilder(tokenizer, config.thinker, systemText(false, undefined), false);
    throws(() => builder.build({ ids: [tokenizer.tokenId('<|AUDIO|>')] }, noMedia, { length: 0, nextPosition: 0, pending: null }, STOPS()), 'BAD_INPUT', /<\|audio_bos\|>|audio/);
    throws(() => systemText(true, 'Talk like a pirate.'), 'BAD_INPUT', /fixed system prompt/);
    throws(() => systemText(false, ''), 'BAD_INPUT', /non-empty/);
  });
});
