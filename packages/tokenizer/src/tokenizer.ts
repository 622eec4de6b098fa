/**
 * Qwen2 byte-level BPE for Qwen2.5-Omni, run by @huggingface/tokenizers from
 * a checkpoint's tokenizer.json (+ tokenizer_config.json), or from
 * vocab.json + merges.txt assembled into the same description. Omni's
 * special tokens are added where the files lack them and are never split.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { OmniError, type CheckpointFiles, type MultimodalTokenIds } from '@omniweb/core';
import { tokenBytes } from './byteLevel.js';
import { ChatTemplate, OMNI_CHAT_TEMPLATE, type ChatMessage, type ChatOptions } from './chatTemplate.js';
import { MULTIMODAL_TOKEN_NAMES, OMNI_SPECIAL_TOKENS, QWEN2_SPLIT_PATTERN } from './specialTokens.js';

/** The tokenizer files a checkpoint may hold, by file name, as text. */
export const TOKENIZER_FILES = [
  'tokenizer.json', 'tokenizer_config.json', 'vocab.json', 'merges.txt', 'added_tokens.json', 'chat_template.json', 'chat_template.jinja',
] as const;
export type TokenizerFileName = (typeof TOKENIZER_FILES)[number];
export type TokenizerTexts = Partial<Record<TokenizerFileName, string>>;

export interface TokenizerOptions {
  /** The multimodal ids of the model's config.json (thinker `tokens`); default: the fact sheet's ids. */
  multimodalTokenIds?: MultimodalTokenIds;
  /** A Jinja chat template to use instead of the checkpoint's. */
  chatTemplate?: string;
}

export interface DecodeOptions {
  /** Leave out special tokens (<|im_end|>, <|AUDIO|>, …). */
  skipSpecialTokens?: boolean;
}

interface AddedTokenJson {
  id: number;
  content: string;
  special: boolean;
  single_word?: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  normalized?: boolean;
}

type JsonObject = Record<string, unknown>;

function badConfig(message: string, cause?: unknown): OmniError {
  return new OmniError('BAD_CONFIG', message, cause === undefined ? undefined : { cause });
}

function badInput(message: string): OmniError {
  return new OmniError('BAD_INPUT', message);
}

function parseJson(text: string | undefined, file: string): JsonObject | null {
  if (text === undefined) return null;
  if (typeof text !== 'string') throw badInput(`${file} must be given as text`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw badConfig(`${file} is not valid JSON: ${(e as Error).message}`, e);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw badConfig(`${file} is not a JSON object`);
  return value as JsonObject;
}

function isId(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

/** A tokenizer.json description of Qwen2's BPE from vocab.json + merges.txt (what the reference's Qwen2 converter builds). */
function describeFromVocabMerges(vocabText: string, mergesText: string): JsonObject {
  const vocab = parseJson(vocabText, 'vocab.json')!;
  for (const [token, id] of Object.entries(vocab)) {
    if (!isId(id)) throw badConfig(`vocab.json maps ${JSON.stringify(token)} to ${JSON.stringify(id)}; expected token ids ≥ 0`);
  }
  if (typeof mergesText !== 'string') throw badInput('merges.txt must be given as text');
  const merges = mergesText.split('\n').map((line) => line.replace(/\r$/, '')).filter((line, i) => line !== '' && !(i === 0 && line.startsWith('#version')));
  merges.forEach((line, i) => {
    if (line.split(' ').length !== 2) throw badConfig(`merges.txt line ${i + 1} is ${JSON.stringify(line)}; expected two tokens separated by one space`);
  });
  return {
    added_tokens: [],
    normalizer: { type: 'NFC' },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: QWEN2_SPLIT_PATTERN }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, ignore_merges: false,
      vocab, merges,
    },
  };
}

function tokenName(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v !== null && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return null;
}

/**
 * The added tokens of tokenizer.json, completed from tokenizer_config.json
 * and added_tokens.json, then given Omni's special-token names: a name the
 * files lack takes its id, replacing another token there (Qwen2.5 calls
 * 151646 <|object_ref_start|>, Omni <|AUDIO|>).
 */
function addedTokens(description: JsonObject, config: JsonObject, addedJson: JsonObject | null, special: ReadonlyMap<string, number>): AddedTokenJson[] {
  const listed = description.added_tokens ?? [];
  if (!Array.isArray(listed)) throw badConfig('tokenizer.json: added_tokens is not a list');
  const byId = new Map<number, AddedTokenJson>();
  const add = (token: AddedTokenJson, file: string) => {
    if (!isId(token.id) || typeof token.content !== 'string' || token.content === '') {
      throw badConfig(`${file}: added token ${JSON.stringify(token)} needs an id ≥ 0 and non-empty content`);
    }
    if (!byId.has(token.id) && ![...byId.values()].some((t) => t.content === token.content)) byId.set(token.id, token);
  };
  for (const t of listed) add({ ...(t as AddedTokenJson), special: (t as AddedTokenJson).special === true }, 'tokenizer.json');
  const decoder = config.added_tokens_decoder;
  if (decoder !== undefined) {
    if (decoder === null || typeof decoder !== 'object') throw badConfig('tokenizer_config.json: added_tokens_decoder is not an object');
    for (const [id, t] of Object.entries(decoder as JsonObject)) add({ ...(t as AddedTokenJson), id: Number(id), special: (t as AddedTokenJson).special === true }, 'tokenizer_config.json');
  }
  for (const [content, id] of Object.entries(addedJson ?? {})) add({ id: id as number, content, special: false }, 'added_tokens.json');

  for (const [name, id] of special) {
    const holder = [...byId.values()].find((t) => t.content === name);
    if (holder !== undefined && holder.id !== id) {
      throw badConfig(`the tokenizer files have ${name} as id ${holder.id}, but the model uses ${id}; they belong to different models`);
    }
    if (holder === undefined) byId.set(id, { id, content: name, special: true, single_word: false, lstrip: false, rstrip: false, normalized: false });
    else holder.special = true;
  }
  return [...byId.values()].sort((a, b) => a.id - b.id);
}

function checkTokenizerKind(description: JsonObject): void {
  const model = description.model as JsonObject | undefined;
  if (!model || model.type !== 'BPE') throw new OmniError('UNSUPPORTED_CONFIG', `tokenizer.json: model.type is ${JSON.stringify(model?.type)}; Qwen2.5-Omni uses a byte-level BPE`);
  const decoder = description.decoder as JsonObject | undefined;
  if (!decoder || decoder.type !== 'ByteLevel') {
    throw new OmniError('UNSUPPORTED_CONFIG', `tokenizer.json: decoder.type is ${JSON.stringify(decoder?.type)}; Qwen2.5-Omni's tokenizer decodes byte-level tokens (ByteLevel)`);
  }
}

/** One id's contribution to decoded text. */
type Piece = { added: string; special: boolean } | { bytes: Uint8Array } | null;

/** Qwen2.5-Omni's text tokenizer. */
export class OmniTokenizer {
  readonly #tokenizer: Tokenizer;
  readonly #added: ReadonlyMap<number, AddedTokenJson>;
  readonly #specialIds: ReadonlyMap<string, number>;
  readonly #template: ChatTemplate;

  private constructor(tokenizer: Tokenizer, added: AddedTokenJson[], template: ChatTemplate) {
    this.#tokenizer = tokenizer;
    this.#added = new Map(added.map((t) => [t.id, t]));
    this.#specialIds = new Map(added.filter((t) => t.special).map((t) => [t.content, t.id]));
    this.#template = template;
  }

  /**
   * From the text of a checkpoint's tokenizer files, by file name: tokenizer.json,
   * or vocab.json + merges.txt; tokenizer_config.json, added_tokens.json and
   * the chat template (chat_template.jinja, chat_template.json, or
   * tokenizer_config.json's) when present.
   */
  static fromFiles(files: TokenizerTexts, options: TokenizerOptions = {}): OmniTokenizer {
    if (files === null || typeof files !== 'object') throw badInput(`OmniTokenizer.fromFiles takes a record of file name → text (${TOKENIZER_FILES.join(', ')})`);
    if (options === null || typeof options !== 'object') throw badInput('OmniTokenizer.fromFiles: options must be an object');
    let description: JsonObject;
    if (files['tokenizer.json'] !== undefined) {
      description = parseJson(files['tokenizer.json'], 'tokenizer.json')!;
    } else if (files['vocab.json'] !== undefined && files['merges.txt'] !== undefined) {
      description = describeFromVocabMerges(files['vocab.json'], files['merges.txt']);
    } else {
      throw new OmniError('IO', 'the tokenizer needs tokenizer.json, or vocab.json together with merges.txt; none was found among the checkpoint files');
    }
    checkTokenizerKind(description);
    const config = parseJson(files['tokenizer_config.json'], 'tokenizer_config.json') ?? {};
    if (config.clean_up_tokenization_spaces === true) {
      throw new OmniError('UNSUPPORTED_CONFIG', 'tokenizer_config.json: clean_up_tokenization_spaces is true; Qwen tokenizers decode without it, and streaming decode cannot undo it');
    }
    const special = new Map(Object.entries(OMNI_SPECIAL_TOKENS));
    if (options.multimodalTokenIds !== undefined) {
      for (const [key, name] of Object.entries(MULTIMODAL_TOKEN_NAMES) as [keyof MultimodalTokenIds, string][]) {
        const id = options.multimodalTokenIds[key];
        if (!isId(id)) throw badInput(`OmniTokenizer.fromFiles: multimodalTokenIds.${key} is ${String(id)}; expected a token id`);
        special.set(name, id);
      }
    }
    const added = addedTokens(description, config, parseJson(files['added_tokens.json'], 'added_tokens.json'), special);
    const names = new Set(added.map((t) => t.content));
    const additional = Array.isArray(config.additional_special_tokens) ? config.additional_special_tokens.map(tokenName).filter((n): n is string => n !== null && names.has(n)) : [];
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer({ ...description, added_tokens: added }, { ...config, additional_special_tokens: additional, clean_up_tokenization_spaces: false });
    } catch (e) {
      throw badConfig(`the tokenizer files are not a tokenizer @huggingface/tokenizers can build: ${(e as Error).message}`, e);
    }
    const specialStrings: Record<string, string> = {};
    for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) {
      const name = tokenName(config[key]);
      if (name !== null) specialStrings[key] = name;
    }
    return new OmniTokenizer(tokenizer, added, new ChatTemplate(options.chatTemplate ?? chatTemplateSource(files) ?? OMNI_CHAT_TEMPLATE, specialStrings));
  }

  /** The special tokens by name → id (Omni's and the files' own). */
  get specialTokens(): ReadonlyMap<string, number> {
    return this.#specialIds;
  }

  /** The chat template in use (the checkpoint's, or Qwen2.5-Omni's as the fact sheet describes it). */
  get chatTemplate(): string {
    return this.#template.source;
  }

  /** The id of a special token, e.g. `tokenId('<|AUDIO|>')`. */
  tokenId(name: string): number {
    const id = this.#specialIds.get(name);
    if (id === undefined) {
      throw badInput(`OmniTokenizer.tokenId: ${JSON.stringify(name)} is not a special token of this tokenizer; known: ${[...this.#specialIds.keys()].join(' ')}`);
    }
    return id;
  }

  /** Token ids of `text`; special-token names in it become their single ids. */
  encode(text: string): Int32Array {
    if (typeof text !== 'string') throw badInput(`OmniTokenizer.encode takes a string, got ${typeof text}`);
    const lone = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.exec(text);
    if (lone !== null) {
      throw badInput(`OmniTokenizer.encode: the text has a lone UTF-16 surrogate (U+${lone[0].charCodeAt(0).toString(16).toUpperCase()}) at index ${lone.index}, which UTF-8 cannot hold; repair the string (e.g. String.prototype.toWellFormed) before encoding`);
    }
    if (text === '') return new Int32Array(0);
    return Int32Array.from(this.#tokenizer.encode(text, { add_special_tokens: false }).ids);
  }

  /** Text of `ids`; byte sequences that are not valid UTF-8 become U+FFFD; ids without a token give no text. */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const list = checkIds(ids, 'OmniTokenizer.decode');
    if (list.length === 0) return '';
    return this.#tokenizer.decode(list, { skip_special_tokens: options.skipSpecialTokens === true, clean_up_tokenization_spaces: false });
  }

  /** The conversation rendered by the chat template (see ChatOptions for speech output). */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatOptions = {}): string {
    return this.#template.render(messages, options);
  }

  /** `encode(applyChatTemplate(messages, options))`: ids with one placeholder per media item, for expandPlaceholders. */
  encodeChat(messages: readonly ChatMessage[], options: ChatOptions = {}): Int32Array {
    return this.encode(this.applyChatTemplate(messages, options));
  }

  /** A decoder that turns generated ids into text deltas one at a time. */
  streamingDecoder(options: DecodeOptions = {}): StreamingDecoder {
    return new StreamingDecoder((id) => this.#piece(id), options);
  }

  #piece(id: number): Piece {
    const added = this.#added.get(id);
    if (added !== undefined) return { added: added.content, special: added.special };
    const token = this.#tokenizer.id_to_token(id);
    if (token === undefined) return null;
    const bytes = tokenBytes(token);
    if (bytes === null) throw new OmniError('INTERNAL', `token ${id} (${JSON.stringify(token)}) has a character outside the byte-level alphabet`);
    return { bytes };
  }
}

function chatTemplateSource(files: TokenizerTexts): string | null {
  if (files['chat_template.jinja'] !== undefined) return files['chat_template.jinja'];
  const json = parseJson(files['chat_template.json'], 'chat_template.json');
  if (json !== null) {
    if (typeof json.chat_template !== 'string') throw badConfig('chat_template.json has no chat_template string');
    return json.chat_template;
  }
  const config = parseJson(files['tokenizer_config.json'], 'tokenizer_config.json');
  return typeof config?.chat_template === 'string' ? config.chat_template : null;
}

function checkIds(ids: ArrayLike<number>, where: string): number[] {
  if (ids === null || typeof ids !== 'object' || typeof ids.length !== 'number') throw badInput(`${where} takes an array of token ids`);
  const list = Array.from(ids);
  list.forEach((id, i) => {
    if (!isId(id)) throw badInput(`${where}: ids[${i}] is ${String(id)}; expected a token id ≥ 0`);
  });
  return list;
}

/**
 * Generated ids → text deltas. Bytes of a character split across tokens are
 * held until the character is complete, so a delta never ends inside a
 * multi-byte character; the deltas joined equal `decode` of all ids.
 */
export class StreamingDecoder {
  readonly #piece: (id: number) => Piece;
  readonly #skipSpecial: boolean;
  #utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

  constructor(piece: (id: number) => Piece, options: DecodeOptions = {}) {
    this.#piece = piece;
    this.#skipSpecial = options.skipSpecialTokens === true;
  }

  /** The text that id completes (possibly empty). */
  push(id: number): string {
    if (!isId(id)) throw badInput(`StreamingDecoder.push: id is ${String(id)}; expected a token id ≥ 0`);
    const piece = this.#piece(id);
    if (piece === null) return '';
    if ('bytes' in piece) return this.#utf8.decode(piece.bytes, { stream: true });
    // A skipped special token is invisible: bytes on both sides of it join, as in decode.
    if (piece.special && this.#skipSpecial) return '';
    return this.flush() + piece.added;
  }

  /** Ends the text: bytes of an unfinished character become U+FFFD. */
  flush(): string {
    return this.#utf8.decode();
  }
}

/** Reads the tokenizer files of a checkpoint folder (directoryFiles, urlFiles, blobFiles) and builds the tokenizer. */
export async function loadTokenizer(files: CheckpointFiles, options: TokenizerOptions = {}): Promise<OmniTokenizer> {
  if (files === null || typeof files !== 'object' || typeof files.open !== 'function') {
    throw badInput('loadTokenizer takes checkpoint files (directoryFiles, urlFiles or blobFiles from @omniweb/core)');
  }
  const texts: TokenizerTexts = {};
  for (const name of TOKENIZER_FILES) {
    const source = await files.open(name);
    if (source === null) continue;
    try {
      texts[name] = new TextDecoder('utf-8', { fatal: true }).decode(await source.read(0, source.size));
    } catch (e) {
      if (e instanceof OmniError) throw e;
      throw badConfig(`${files.location}/${name} is not UTF-8 text: ${(e as Error).message}`, e);
    } finally {
      await source.close();
    }
  }
  try {
    return OmniTokenizer.fromFiles(texts, options);
  } catch (e) {
    if (e instanceof OmniError && e.code === 'IO') throw new OmniError('IO', `${files.location}: ${e.message}`, { cause: e });
    throw e;
  }
}
