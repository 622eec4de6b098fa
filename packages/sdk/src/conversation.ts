/**
 * One conversation run in this thread: each turn goes media → encoders → Thinker prefill →
 * generation, and with speech every reply token goes on to the Talker as it is made while
 * token2wav turns the Talker's codes into PCM (fact sheet §7.2, §8.6). The worker
 * orchestrator implements the same `Conversation` with each stage in its own worker.
 */
import { OmniError, type Speaker, type Tensor } from '@omniweb/core';
import { ThinkerSession, type CachePolicy, type MediaEmbeddings, type PrefillResult, type SamplingOptions } from '@omniweb/thinker';
import type { TalkerStream } from '@omniweb/talker';
import { checkSendInput, prepareMedia, type SendInput, type TurnMedia } from './inputs.js';
import type { OmniModels } from './models.js';
import { PromptBuilder, type TurnPrompt } from './prompt.js';

/** Where a turn's output goes as it is made. */
export interface TurnSink {
  text(id: number, text: string): void;
  audio(pcm: Float32Array): void;
}

export interface TurnOutcome {
  promptTokens: number;
  /** Every generated id, the stop token included. */
  ids: number[];
  codes: number;
  /** The signal fired: the reply is cut where it was, and the conversation keeps that much. */
  interrupted: boolean;
}

/** A conversation's stages, as a session drives them one turn at a time. */
export interface Conversation {
  /** Runs one turn; rejects with OmniError, leaving the conversation able to take the next turn. */
  runTurn(input: SendInput, sink: TurnSink, signal: AbortSignal): Promise<TurnOutcome>;
  dispose(): void;
}

export interface ConversationOptions {
  systemText: string;
  /** The voice when the reply is spoken; null for text only. */
  speaker: Speaker | null;
  sampling: SamplingOptions;
  maxNewTokens: number;
  talker: { sampling?: SamplingOptions; maxNewTokens?: number };
  cache?: CachePolicy;
}

function isAborted(e: unknown): boolean {
  return e instanceof OmniError && e.code === 'ABORTED';
}

export class InThreadConversation implements Conversation {
  readonly #models: OmniModels;
  readonly #options: ConversationOptions;
  readonly #thinker: ThinkerSession;
  readonly #prompts: PromptBuilder;
  readonly #stops: ReadonlySet<number>;

  constructor(models: OmniModels, options: ConversationOptions) {
    if (options.speaker && !models.speech) throw new OmniError('INTERNAL', 'a voice was resolved for a model that cannot speak');
    this.#models = models;
    this.#options = options;
    this.#prompts = new PromptBuilder(models.tokenizer, models.config.thinker, options.systemText, options.speaker !== null);
    const { eos, pad } = models.config.thinker.tokens;
    this.#stops = new Set([eos, pad].filter((id): id is number => id !== null));
    this.#thinker = new ThinkerSession(models.thinker, options.cache ? { cache: options.cache } : {});
  }

  async runTurn(input: SendInput, sink: TurnSink, signal: AbortSignal): Promise<TurnOutcome> {
    checkSendInput(input);
    const media = await prepareMedia(input, this.#models.preprocessor);
    const t = this.#thinker;
    const prompt = this.#prompts.build(input, media, { length: t.length, nextPosition: t.nextPosition, pending: t.pending }, this.#stops);
    const outcome: TurnOutcome = { promptTokens: prompt.ids.length, ids: [], codes: 0, interrupted: false };
    const encoded = await this.#encode(media);
    try {
      const speech = this.#options.speaker !== null;
      const prefill = await t.prefill({ ids: prompt.ids, media: encoded.media, positions: prompt.positions }, { hidden: speech, embeddings: speech, signal });
      await this.#reply(prompt, prefill, sink, signal, outcome);
      // The reply may have been cut in the Talker or token2wav after the text was complete.
      outcome.interrupted = signal.aborted;
    } catch (e) {
      if (!(isAborted(e) && signal.aborted)) throw e;
      outcome.interrupted = true;
    } finally {
      for (const tensor of encoded.tensors) this.#models.backend.dispose(tensor);
    }
    return outcome;
  }

  dispose(): void {
    this.#thinker.dispose();
  }

  /** The encoders' rows for the prompt's placeholders. */
  async #encode(media: TurnMedia): Promise<{ media: MediaEmbeddings; tensors: Tensor[] }> {
    const { audioEncoder, visionEncoder } = this.#models;
    const out: MediaEmbeddings = {};
    const tensors: Tensor[] = [];
    try {
      if (media.audio) tensors.push(out.audio = await audioEncoder.encode(media.audio));
      if (media.image) tensors.push(out.image = (await visionEncoder.encode([media.image])).embeddings);
      if (media.video) tensors.push(out.video = (await visionEncoder.encode([media.video])).embeddings);
    } catch (e) {
      for (const tensor of tensors) this.#models.backend.dispose(tensor);
      throw e;
    }
    return { media: out, tensors };
  }

  /**
   * Generation, and with speech the Talker and token2wav alongside it. A failure in either
   * stops both; the turn's own signal stops both at once and is no failure.
   */
  async #reply(prompt: TurnPrompt, prefill: PrefillResult, sink: TurnSink, signal: AbortSignal, outcome: TurnOutcome): Promise<void> {
    const { tokenizer, speech: speechModels } = this.#models;
    const speaker = this.#options.speaker;
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal.addEventListener('abort', onAbort);
    let stream: TalkerStream | null = null;
    let speaking: Promise<void> | null = null;
    let speechError: unknown = null;
    let failure: unknown = null;
    try {
      if (speaker && speechModels) {
        stream = speechModels.talker.start(
          { ...prompt.talkerInputs, thinkerHidden: prefill.hidden!, thinkerEmbeddings: prefill.embeddings! },
          { speaker, ...this.#options.talker },
        );
      }
      const speak = async (talker: TalkerStream) => {
        const codes = talker.codes({ signal: stop.signal });
        const counted = async function* () {
          for await (const code of codes) {
            outcome.codes++;
            yield code;
          }
        };
        for await (const pcm of speechModels!.token2wav.stream(counted(), speaker!)) {
          if (stop.signal.aborted) return;
          sink.audio(pcm);
        }
      };
      // Bytes of a character cut off by the end of the reply are dropped rather than shown as U+FFFD.
      const decoder = tokenizer?.streamingDecoder({ skipSpecialTokens: true }) ?? null;
      try {
        const tokens = this.#thinker.generate({
          maxNewTokens: this.#options.maxNewTokens, sampling: this.#options.sampling, signal: stop.signal,
          hidden: stream !== null, embedding: stream !== null,
        });
        for await (const event of tokens) {
          // An event carries H and E of the token fed to make it: the previous reply token (§7.2).
          if (stream && outcome.ids.length > 0) {
            stream.push({ hidden: event.hidden!, embedding: event.embedding! });
            speaking ??= speak(stream).catch((e: unknown) => {
              // Errors after the stop are its echo; the first cause is kept.
              if (!stop.signal.aborted) speechError = e;
              stop.abort();
            });
          }
          outcome.ids.push(event.id);
          if (!this.#stops.has(event.id)) sink.text(event.id, decoder ? decoder.push(event.id) : '');
        }
        stream?.endOfText();
      } catch (e) {
        failure = e;
        stop.abort();
      }
      await speaking;
    } finally {
      signal.removeEventListener('abort', onAbort);
      stream?.dispose();
    }
    if (speechError) throw speechError;
    if (failure) throw failure;
  }
}
