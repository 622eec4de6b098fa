/**
 * Multimodal merge (fact sheet §6): the embeddings of `<|AUDIO|>`, `<|IMAGE|>`
 * and `<|VIDEO|>` placeholder tokens are replaced, in order, by the encoders'
 * output rows. Each contiguous run of one placeholder becomes one device copy.
 */
import { OmniError, type Backend, type Tensor } from '@omniweb/core';

export type MediaKind = 'audio' | 'image' | 'video';
export const MEDIA_KINDS: readonly MediaKind[] = ['audio', 'image', 'video'];

/**
 * Encoder rows `[n, hidden]` for one kind. A bare tensor is read from row 0;
 * `{ rows, offset }` starts at `offset`, so one clip's features can be spread
 * over several prefill chunks without slicing them.
 */
export type MediaRows = Tensor | { rows: Tensor; offset: number };

/** The rows each kind of placeholder in a chunk takes, in order of appearance. */
export type MediaEmbeddings = Partial<Record<MediaKind, MediaRows>>;

/** Placeholder token id of each media kind (from the typed config). */
export type MediaTokenIds = Record<MediaKind, number>;

interface Source {
  rows: Tensor;
  offset: number;
}

function sourceOf(kind: MediaKind, value: MediaRows, backend: Backend, hidden: number): Source {
  const { rows, offset } = 'rows' in value ? value : { rows: value, offset: 0 };
  if (!rows || typeof rows !== 'object' || !Array.isArray(rows.shape)) {
    throw new OmniError('BAD_INPUT', `media.${kind} must be a tensor [n, ${hidden}] or { rows, offset }`);
  }
  if (rows.backend !== backend.info.kind) {
    throw new OmniError('BAD_INPUT', `media.${kind} lives on the ${rows.backend} backend; the Thinker runs on ${backend.info.kind}`);
  }
  if (rows.dtype !== 'f32' || rows.shape.length !== 2 || rows.shape[1] !== hidden) {
    throw new OmniError('SHAPE_MISMATCH', `media.${kind} is ${rows.dtype} [${rows.shape.join(', ')}]; expected f32 [n, ${hidden}] (the Thinker hidden size)`);
  }
  if (!Number.isSafeInteger(offset) || offset < 0) throw new OmniError('BAD_INPUT', `media.${kind} offset ${offset} must be an integer ≥ 0`);
  return { rows, offset };
}

/**
 * Overwrites the placeholder rows of `inputs` `[T, hidden]` with media rows.
 * Every placeholder needs a row and every kind given must be used, so a
 * count mismatch between the prompt and the encoders fails here, by name.
 */
export function mergeMedia(
  backend: Backend, inputs: Tensor, ids: Int32Array, media: MediaEmbeddings, tokenIds: MediaTokenIds,
): void {
  const hidden = inputs.shape[1];
  const counts: Record<MediaKind, number> = { audio: 0, image: 0, video: 0 };
  const kindOf = new Map<number, MediaKind>(MEDIA_KINDS.map((k) => [tokenIds[k], k]));
  for (const id of ids) {
    const kind = kindOf.get(id);
    if (kind) counts[kind]++;
  }
  const sources: Partial<Record<MediaKind, Source>> = {};
  for (const kind of MEDIA_KINDS) {
    const given = media[kind];
    if (given === undefined) {
      if (counts[kind] > 0) {
        throw new OmniError('BAD_INPUT', `the chunk has ${counts[kind]} ${kind} placeholder tokens (id ${tokenIds[kind]}) but no media.${kind} rows`);
      }
      continue;
    }
    const source = sourceOf(kind, given, backend, hidden);
    if (counts[kind] === 0) throw new OmniError('BAD_INPUT', `media.${kind} was given but the chunk has no ${kind} placeholder token (id ${tokenIds[kind]})`);
    if (source.offset + counts[kind] > source.rows.shape[0]) {
      throw new OmniError(
        'SHAPE_MISMATCH',
        `the chunk has ${counts[kind]} ${kind} placeholders but media.${kind} has only ${source.rows.shape[0] - source.offset} rows from offset ${source.offset}`,
      );
    }
    sources[kind] = source;
  }
  for (let t = 0; t < ids.length;) {
    const kind = kindOf.get(ids[t]);
    let end = t + 1;
    while (end < ids.length && ids[end] === ids[t]) end++;
    if (kind) {
      const source = sources[kind]!;
      backend.copy(source.rows, inputs, source.offset * hidden, t * hidden, (end - t) * hidden);
      source.offset += end - t;
    }
    t = end;
  }
}
