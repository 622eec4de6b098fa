/**
 * Chat rendering: the checkpoint's Jinja template through @huggingface/jinja,
 * or, when the checkpoint ships none, Qwen2.5-Omni's template as the fact
 * sheet describes it (§6).
 */
import { Template } from '@huggingface/jinja';
import { OmniError } from '@omniweb/core';
import { OMNI_DEFAULT_SYSTEM_PROMPT, OMNI_SPEECH_SYSTEM_PROMPT } from './specialTokens.js';

/** One item of a multimodal message; media items render as their placeholder triple. */
export type ChatContentItem =
  | { type: 'text'; text: string }
  | { type: 'image' | 'audio' | 'video'; [key: string]: unknown };

export interface ChatMessage {
  role: string;
  content: string | readonly ChatContentItem[];
}

export interface ChatOptions {
  /** End with `<|im_start|>assistant\n` (default true). */
  addGenerationPrompt?: boolean;
  /**
   * The reply will be spoken: the system turn must be the fixed prompt of
   * fact sheet §1. It is inserted when the conversation has no system turn;
   * another system text is refused.
   */
  speech?: boolean;
  /** Prefix images and videos with `Picture k: ` / `Video k: `. */
  addVisionId?: boolean;
  /** Prefix audio with `Audio k: `. */
  addAudioId?: boolean;
}

/**
 * Qwen2.5-Omni's chat template (fact sheet §6): a default system turn when
 * the first message is not one, `<|im_start|>role\n…<|im_end|>\n` per message,
 * media items as their placeholder triples (optionally numbered), and the
 * assistant prompt.
 */
export const OMNI_CHAT_TEMPLATE = `{%- set counts = namespace(image=0, audio=0, video=0) -%}
{%- if messages[0]['role'] != 'system' -%}
{{- '<|im_start|>system\\n${OMNI_DEFAULT_SYSTEM_PROMPT}<|im_end|>\\n' -}}
{%- endif -%}
{%- for message in messages -%}
{{- '<|im_start|>' + message['role'] + '\\n' -}}
{%- if message['content'] is string -%}
{{- message['content'] -}}
{%- else -%}
{%- for item in message['content'] -%}
{%- if item['type'] == 'text' -%}
{{- item['text'] -}}
{%- elif item['type'] == 'image' -%}
{%- set counts.image = counts.image + 1 -%}
{%- if add_vision_id -%}{{- 'Picture ' + counts.image|string + ': ' -}}{%- endif -%}
{{- '<|vision_bos|><|IMAGE|><|vision_eos|>' -}}
{%- elif item['type'] == 'audio' -%}
{%- set counts.audio = counts.audio + 1 -%}
{%- if add_audio_id -%}{{- 'Audio ' + counts.audio|string + ': ' -}}{%- endif -%}
{{- '<|audio_bos|><|AUDIO|><|audio_eos|>' -}}
{%- elif item['type'] == 'video' -%}
{%- set counts.video = counts.video + 1 -%}
{%- if add_vision_id -%}{{- 'Video ' + counts.video|string + ': ' -}}{%- endif -%}
{{- '<|vision_bos|><|VIDEO|><|vision_eos|>' -}}
{%- endif -%}
{%- endfor -%}
{%- endif -%}
{{- '<|im_end|>\\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<|im_start|>assistant\\n' -}}
{%- endif -%}`;

function badInput(message: string): OmniError {
  return new OmniError('BAD_INPUT', message);
}

const MEDIA_TYPES = new Set(['image', 'audio', 'video']);

function checkMessages(messages: readonly ChatMessage[]): void {
  if (!Array.isArray(messages) || messages.length === 0) throw badInput('applyChatTemplate: messages must be a non-empty array of { role, content }');
  messages.forEach((m, i) => {
    if (m === null || typeof m !== 'object' || typeof m.role !== 'string' || m.role === '') {
      throw badInput(`applyChatTemplate: messages[${i}] needs a role string (system, user, assistant)`);
    }
    if (typeof m.content === 'string') return;
    if (!Array.isArray(m.content)) throw badInput(`applyChatTemplate: messages[${i}].content must be a string or an array of content items`);
    (m.content as readonly ChatContentItem[]).forEach((item, k) => {
      const where = `applyChatTemplate: messages[${i}].content[${k}]`;
      if (item === null || typeof item !== 'object') throw badInput(`${where} must be an object { type, … }`);
      if (item.type === 'text') {
        if (typeof item.text !== 'string') throw badInput(`${where} is a text item without a text string`);
      } else if (!MEDIA_TYPES.has(item.type)) {
        throw badInput(`${where} has type ${JSON.stringify(item.type)}; expected text, image, audio or video`);
      }
    });
  });
}

/** The text of a system message, or null when it holds media. */
function systemText(m: ChatMessage): string | null {
  if (typeof m.content === 'string') return m.content;
  return m.content.every((item) => item.type === 'text') ? m.content.map((item) => (item as { text: string }).text).join('') : null;
}

/** A parsed chat template and the variables it sees besides the messages. */
export class ChatTemplate {
  readonly source: string;
  readonly #template: Template;
  readonly #specialTokens: Record<string, string>;

  /** `specialTokens`: the bos/eos/pad/unk token strings templates may refer to. */
  constructor(source: string, specialTokens: Record<string, string> = {}) {
    if (typeof source !== 'string' || source.trim() === '') throw new OmniError('BAD_CONFIG', 'the chat template is empty');
    try {
      this.#template = new Template(source);
    } catch (e) {
      throw new OmniError('BAD_CONFIG', `the chat template does not parse as Jinja: ${(e as Error).message}`, { cause: e });
    }
    this.source = source;
    this.#specialTokens = { ...specialTokens };
  }

  render(messages: readonly ChatMessage[], options: ChatOptions = {}): string {
    checkMessages(messages);
    if (options === null || typeof options !== 'object') throw badInput('applyChatTemplate: options must be an object');
    let turns = messages;
    if (options.speech === true) {
      if (messages[0].role !== 'system') {
        turns = [{ role: 'system', content: OMNI_SPEECH_SYSTEM_PROMPT }, ...messages];
      } else if (systemText(messages[0]) !== OMNI_SPEECH_SYSTEM_PROMPT) {
        throw badInput(`applyChatTemplate: speech output needs the system prompt ${JSON.stringify(OMNI_SPEECH_SYSTEM_PROMPT)} (fact sheet §1); the conversation's system turn differs. Drop it (it is then inserted) or pass speech: false`);
      }
    }
    try {
      return this.#template.render({
        ...this.#specialTokens,
        messages: turns,
        add_generation_prompt: options.addGenerationPrompt ?? true,
        add_vision_id: options.addVisionId === true,
        add_audio_id: options.addAudioId === true,
      });
    } catch (e) {
      throw new OmniError('BAD_CONFIG', `the chat template failed on these messages: ${(e as Error).message}`, { cause: e });
    }
  }
}
