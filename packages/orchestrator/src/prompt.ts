/**
 * A turn's prompt for the Thinker: the chat template's rendering of the user message (the
 * first turn with its system turn; later turns only what follows the conversation so far),
 * placeholder expansion (fact sheet §9) and TMRoPE positions that continue the cache's (§5.2).
 */
import { OmniError, type ThinkerConfig } from '@omniweb/core';
import { expandPlaceholders, OMNI_DEFAULT_SYSTEM_PROMPT, OMNI_SPEECH_SYSTEM_PROMPT, type ChatContentItem, type ChatMessage, type OmniTokenizer } from '@omniweb/tokenizer';
import { thinkerTmropeConfig, tmropePositions, type TmropeConfig, type TmropeInputs } from '@omniweb/tmrope';
import type { MediaLayout, SendInput } from './inputs.js';

/** Where the conversation stands in the Thinker (`ThinkerSession`'s counters). */
export interface ConversationState {
  /** Tokens fed so far; 0 for a new conversation. */
  length: number;
  nextPosition: number;
  /** The last generated token, emitted but not fed. */
  pending: number | null;
}

export interface TurnPrompt {
  /** Expanded prompt ids of this turn. */
  ids: Int32Array;
  /** Absolute positions, stream-major [3 · ids.length]. */
  positions: Int32Array;
  /** The ids with the media sizes: the Talker's rope index reads them (§7.2 step 5). */
  talkerInputs: TmropeInputs;
}

/** The system text of a session: the fixed speech prompt when the reply is spoken (fact sheet §1). */
export function systemText(speech: boolean, systemPrompt: string | undefined): string {
  if (systemPrompt !== undefined && (typeof systemPrompt !== 'string' || systemPrompt.trim() === '')) {
    throw new OmniError('BAD_INPUT', 'systemPrompt must be a non-empty string');
  }
  if (!speech) return systemPrompt ?? OMNI_DEFAULT_SYSTEM_PROMPT;
  if (systemPrompt !== undefined && systemPrompt !== OMNI_SPEECH_SYSTEM_PROMPT) {
    throw new OmniError('BAD_INPUT', `a spoken reply needs the fixed system prompt ${JSON.stringify(OMNI_SPEECH_SYSTEM_PROMPT)} (fact sheet §1); leave systemPrompt out, or pass speech: false`);
  }
  return OMNI_SPEECH_SYSTEM_PROMPT;
}

export class PromptBuilder {
  readonly #tokenizer: OmniTokenizer | null;
  readonly #tmrope: TmropeConfig;
  readonly #system: ChatMessage;
  readonly #speech: boolean;
  /** The system turn rendered alone: later turns render after it. */
  readonly #head: string | null;
  /** What ends a message (`<|im_end|>\n`): it closes the previous reply before a new turn. */
  readonly #closeIds: Int32Array;

  constructor(tokenizer: OmniTokenizer | null, config: ThinkerConfig, system: string, speech: boolean) {
    this.#tokenizer = tokenizer;
    this.#tmrope = thinkerTmropeConfig(config);
    this.#system = { role: 'system', content: system };
    this.#speech = speech;
    if (tokenizer) {
      const head = tokenizer.applyChatTemplate([this.#system], { speech, addGenerationPrompt: false });
      const end = head.lastIndexOf(system);
      if (end < 0) throw new OmniError('UNSUPPORTED_CONFIG', 'the chat template does not write the system prompt into the prompt; the session cannot place its system turn');
      this.#head = head;
      this.#closeIds = tokenizer.encode(head.slice(end + system.length));
    } else {
      this.#head = null;
      this.#closeIds = new Int32Array(0);
    }
  }

  /** The turn's prompt chunk (BAD_INPUT when the ids and the media disagree). */
  build(input: SendInput, layout: MediaLayout, state: ConversationState, stopIds: ReadonlySet<number>): TurnPrompt {
    const ids = input.ids !== undefined ? Array.from(input.ids) : this.#render(input, layout, state.length === 0);
    // The last reply stays in the conversation: its unfed last token, then the end of the message.
    const prefix = this.#prefix(state, stopIds, input.ids !== undefined);
    const expanded = expandPlaceholders({ inputIds: [...prefix, ...ids], ...layout }, this.#tmrope);
    const talkerInputs: TmropeInputs = { inputIds: expanded, ...layout };
    const { positionIds } = tmropePositions(talkerInputs, this.#tmrope);
    // get_rope_index starts each piece at the largest position before it, plus one (§5.2).
    for (let i = 0; i < positionIds.length; i++) positionIds[i] += state.nextPosition;
    return { ids: expanded, positions: positionIds, talkerInputs };
  }

  /**
   * A live turn's prompt around its one media block, whose tokens are fed chunk by chunk as
   * they are encoded: `head` runs up to the block's first wrapper token (the previous reply's
   * close included), `tail` from after its last one. `video` is a camera with the
   * microphone's audio interleaved (use_audio_in_video, §9); without it the block is audio.
   */
  liveFrame(video: boolean, state: ConversationState, stopIds: ReadonlySet<number>): { head: Int32Array; tail: Int32Array } {
    // Only the kind of media matters to the template; the sizes come with the chunks.
    const layout: MediaLayout = video ? { videoGrids: [[1, 1, 1]] } : { audioFeatureLengths: [1] };
    const { tokens } = this.#tmrope;
    const ids = [...this.#prefix(state, stopIds, false), ...this.#render({}, layout, state.length === 0)];
    const [open, placeholder, close] = video ? [tokens.visionStart, tokens.video, tokens.visionEnd] : [tokens.audioStart, tokens.audio, tokens.audioEnd];
    const at = ids.indexOf(open);
    if (at < 0 || ids[at + 1] !== placeholder || ids[at + 2] !== close || ids.indexOf(open, at + 1) >= 0) {
      throw new OmniError('UNSUPPORTED_CONFIG', `the chat template does not render one ${video ? 'video' : 'audio'} item as its three wrapper and placeholder tokens; a live turn cannot be fed piece by piece`);
    }
    return { head: Int32Array.from(ids.slice(0, at)), tail: Int32Array.from(ids.slice(at + 3)) };
  }

  /** What goes before a turn's own messages: the last reply's unfed token and the end of its message. */
  #prefix(state: ConversationState, stopIds: ReadonlySet<number>, rawIds: boolean): number[] {
    const prefix: number[] = [];
    if (state.length > 0) {
      if (state.pending !== null && !stopIds.has(state.pending)) prefix.push(state.pending);
      if (!rawIds) prefix.push(...this.#closeIds);
    }
    return prefix;
  }

  #render(input: SendInput, layout: MediaLayout, first: boolean): number[] {
    const tokenizer = this.#tokenizer;
    if (!tokenizer) throw new OmniError('BAD_INPUT', 'this checkpoint has no tokenizer files (tokenizer.json, or vocab.json + merges.txt): send the prompt as ids');
    const content: ChatContentItem[] = [];
    if (layout.audioFeatureLengths?.length) content.push({ type: 'audio' });
    if (layout.imageGrids?.length) content.push({ type: 'image' });
    if (layout.videoGrids?.length) content.push({ type: 'video' });
    if (input.text) content.push({ type: 'text', text: input.text });
    const rendered = tokenizer.applyChatTemplate([this.#system, { role: 'user', content }], { speech: this.#speech });
    if (first) return Array.from(tokenizer.encode(rendered));
    if (!rendered.startsWith(this.#head!)) {
      throw new OmniError('UNSUPPORTED_CONFIG', 'the chat template renders the system turn differently when a user turn follows; the session cannot continue the conversation turn by turn');
    }
    return Array.from(tokenizer.encode(rendered.slice(this.#head!.length)));
  }
}
