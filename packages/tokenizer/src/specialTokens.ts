import type { MultimodalTokenIds } from '@omniweb/core';

/**
 * The system prompt the Talker was trained with: speech output needs exactly
 * this text as the system turn (fact sheet §1; the reference processor warns
 * when it differs).
 */
export const OMNI_SPEECH_SYSTEM_PROMPT =
  'You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving auditory and visual inputs, as well as generating text and speech.';

/** The system turn the chat template inserts when a conversation has none (fact sheet §6). */
export const OMNI_DEFAULT_SYSTEM_PROMPT = 'You are a helpful assistant.';

/**
 * Omni's added special tokens with their ids (fact sheet §6). Qwen2.5's own
 * tokenizer files name 151646–151656 differently; a checkpoint's files that
 * lack these names get them at these ids. The TTS markers (151859–151861) and
 * the speakers' bos ids are embedding rows the Talker reads, never text: the
 * fact sheet gives them no names, so they are not tokens here.
 */
export const OMNI_SPECIAL_TOKENS: Readonly<Record<string, number>> = Object.freeze({
  '<|endoftext|>': 151643,
  '<|im_start|>': 151644,
  '<|im_end|>': 151645,
  '<|AUDIO|>': 151646,
  '<|audio_bos|>': 151647,
  '<|audio_eos|>': 151648,
  '<|vision_bos|>': 151652,
  '<|vision_eos|>': 151653,
  '<|IMAGE|>': 151655,
  '<|VIDEO|>': 151656,
});

/** The special-token names of the multimodal ids in config.json. */
export const MULTIMODAL_TOKEN_NAMES: Readonly<Record<keyof MultimodalTokenIds, string>> = Object.freeze({
  audio: '<|AUDIO|>',
  audioStart: '<|audio_bos|>',
  audioEnd: '<|audio_eos|>',
  image: '<|IMAGE|>',
  video: '<|VIDEO|>',
  visionStart: '<|vision_bos|>',
  visionEnd: '<|vision_eos|>',
});

/** Qwen2's pre-tokenizer split (contractions, letter runs, single digits, punctuation, newlines, spaces). */
export const QWEN2_SPLIT_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
