/**
 * Placeholder expansion (fact sheet §9), on ids: each media item of the
 * chat-rendered prompt holds one placeholder; the reference processor
 * repeats it to the number of embeddings the encoder will give. Expanding
 * after tokenization gives the same ids as the reference's expansion of the
 * text, because special tokens split the text and are never merged.
 */
import { OmniError } from '@omniweb/core';
import { audioInVideoChunks, audioTokenCount, type GridThw, type TmropeConfig, type TmropeInputs } from '@omniweb/tmrope';
import { MULTIMODAL_TOKEN_NAMES } from './specialTokens.js';

function badInput(message: string): OmniError {
  return new OmniError('BAD_INPUT', message);
}

function listOf<T>(value: readonly T[] | undefined, name: string): readonly T[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw badInput(`expandPlaceholders: ${name} must be an array`);
  return value;
}

function checkGrid(grid: GridThw, mergeSize: number, what: string): number {
  if (grid === null || typeof grid !== 'object' || grid.length !== 3 || ![0, 1, 2].every((i) => Number.isSafeInteger(grid[i]) && grid[i] >= 1)) {
    throw badInput(`expandPlaceholders: ${what} grid is ${JSON.stringify(Array.from((grid ?? []) as ArrayLike<number>))}; expected [t, h, w] in patches, integers ≥ 1`);
  }
  if (grid[1] % mergeSize !== 0 || grid[2] % mergeSize !== 0) {
    throw badInput(`expandPlaceholders: ${what} grid [${grid.join(', ')}] has h or w not a multiple of spatialMergeSize ${mergeSize}`);
  }
  return (grid[0] * grid[1] * grid[2]) / (mergeSize * mergeSize);
}

/**
 * Ids with each `<|AUDIO|>`, `<|IMAGE|>` and `<|VIDEO|>` repeated as the
 * reference processor repeats it: an audio clip gets audioTokenCount of its
 * mel frames, an image or video prod(grid)/merge²; with useAudioInVideo a
 * `<|vision_bos|><|VIDEO|><|vision_eos|>` becomes
 * `<|vision_bos|><|audio_bos|>` + chunk by chunk (video, then its audio) +
 * `<|audio_eos|><|vision_eos|>`, consuming the next audio clip. Media lists
 * are consumed in prompt order; `config` is the model's (thinkerTmropeConfig).
 * Pass the result and the same media to tmropePositions.
 */
export function expandPlaceholders(inputs: TmropeInputs, config: TmropeConfig): Int32Array {
  if (inputs === null || typeof inputs !== 'object') throw badInput('expandPlaceholders: expected { inputIds, imageGrids?, videoGrids?, secondPerGrids?, audioFeatureLengths?, useAudioInVideo? }');
  if (config === null || typeof config !== 'object' || config.tokens === null || typeof config.tokens !== 'object') {
    throw badInput('expandPlaceholders: config must be the model\'s TMRoPE config (thinkerTmropeConfig)');
  }
  const ids = inputs.inputIds;
  if (!(ids instanceof Int32Array) && !Array.isArray(ids)) throw badInput('expandPlaceholders: inputIds must be an Int32Array or an array of token ids');
  const images = listOf(inputs.imageGrids, 'imageGrids');
  const videos = listOf(inputs.videoGrids, 'videoGrids');
  const seconds = listOf(inputs.secondPerGrids, 'secondPerGrids');
  const audios = listOf(inputs.audioFeatureLengths, 'audioFeatureLengths');
  if (videos.length !== seconds.length) throw badInput(`expandPlaceholders: ${videos.length} video grids but ${seconds.length} secondPerGrids; give one per video`);
  const tok = config.tokens;
  const withAudio = inputs.useAudioInVideo === true;
  const out: number[] = [];
  const repeat = (id: number, n: number) => {
    for (let k = 0; k < n; k++) out.push(id);
  };
  let [image, video, audio] = [0, 0, 0];
  const next = <T>(list: readonly T[], index: number, what: string, i: number): T => {
    if (index >= list.length) throw badInput(`expandPlaceholders: the ${what} placeholder at index ${i} is ${what} ${index + 1}, but only ${list.length} ${what} inputs were given`);
    return list[index];
  };
  /** The reference expands one placeholder per item, wrapped in its bos/eos (the chat template writes them so). */
  const wrapped = (i: number, bos: number, eos: number, name: string) => {
    if (ids[i - 1] !== bos || ids[i + 1] !== eos) {
      const [b, e] = bos === tok.audioStart ? [MULTIMODAL_TOKEN_NAMES.audioStart, MULTIMODAL_TOKEN_NAMES.audioEnd] : [MULTIMODAL_TOKEN_NAMES.visionStart, MULTIMODAL_TOKEN_NAMES.visionEnd];
      throw badInput(`expandPlaceholders: ${name} at index ${i} must stand alone between ${b} and ${e}, as the chat template writes one placeholder per media item (are the ids already expanded?)`);
    }
  };
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isSafeInteger(id) || id < 0) throw badInput(`expandPlaceholders: ids[${i}] is ${String(id)}; expected a token id ≥ 0`);
    if (id === tok.audio) {
      wrapped(i, tok.audioStart, tok.audioEnd, MULTIMODAL_TOKEN_NAMES.audio);
      repeat(tok.audio, audioTokenCount(next(audios, audio++, 'audio', i)));
    } else if (id === tok.image) {
      wrapped(i, tok.visionStart, tok.visionEnd, MULTIMODAL_TOKEN_NAMES.image);
      repeat(tok.image, checkGrid(next(images, image, 'image', i), config.spatialMergeSize, `image ${image++}`));
    } else if (id === tok.video) {
      wrapped(i, tok.visionStart, tok.visionEnd, MULTIMODAL_TOKEN_NAMES.video);
      const grid = next(videos, video, 'video', i);
      const n = checkGrid(grid, config.spatialMergeSize, `video ${video}`);
      if (!withAudio) {
        repeat(tok.video, n);
      } else {
        const chunks = audioInVideoChunks(grid, seconds[video], audioTokenCount(next(audios, audio++, 'audio', i)), config);
        // The bos before this placeholder is already out; the block opens with both bos and closes with both eos.
        out.push(tok.audioStart);
        for (const chunk of chunks) {
          repeat(tok.video, chunk.video);
          repeat(tok.audio, chunk.audio);
        }
        out.push(tok.audioEnd);
      }
      video++;
    } else {
      out.push(id);
    }
  }
  const unused = [
    [images.length - image, 'image grids'],
    [videos.length - video, 'video grids'],
    [audios.length - audio, 'audio feature lengths'],
  ] as const;
  for (const [count, what] of unused) {
    if (count > 0) throw badInput(`expandPlaceholders: ${count} ${what} left over; the ids hold fewer placeholders than media given${what === 'audio feature lengths' && !withAudio && videos.length > 0 ? ' (is useAudioInVideo missing?)' : ''}`);
  }
  return Int32Array.from(out);
}
