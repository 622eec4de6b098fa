/**
 * The turn driver: one conversation's turns, run through the pipeline's stages — media →
 * perception → Thinker prefill → generation, and with speech every reply token goes on to the
 * Talker as it is made while token2wav turns the Talker's codes into PCM (fact sheet §7.2,
 * §8.6). The stages may live in this thread or in workers; the driver only sends them host
 * arrays and pulls their results one at a time.
 */
import { nextTask, OmniError, type Speaker } from '@omniweb/core';
import { createEvictionPolicy, type CachePolicy, type SamplingOptions } from '@omniweb/thinker';
import { checkSendInput, type SendInput } from './inputs.js';
import { LiveTurn, type LiveProgress, type LiveTurnInput } from './liveTurn.js';
import type { CheckpointInfo } from './models.js';
import { PromptBuilder, type TurnPrompt } from './prompt.js';
import type { PerceivedMedia, PrefillChunk, PrefillRows, SpeechReply, SpeechSynthesis, Stages, TalkerReply, ThinkerConversation, ThinkerStage } from './stages.js';
import { handOver } from './transfer.js';

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
  /** Interrupted before the first reply token: the turn was taken back, the conversation is as before it. */
  withdrawn: boolean;
}

/** A conversation's stages, as a session drives them one turn at a time. */
export interface Conversation {
  /**
   * Runs one turn; rejects with OmniError, leaving the conversation able to take the next turn
   * and, unless the Thinker itself had to be rebuilt, as it was before the failed one.
   */
  runTurn(input: SendInput, sink: TurnSink, signal: AbortSignal): Promise<TurnOutcome>;
  /** Runs one live turn: its input is encoded and prefilled as it arrives (`LiveTurn`), then the reply. */
  runLiveTurn(input: LiveTurnInput, sink: TurnSink, signal: AbortSignal, onProgress: (progress: LiveProgress) => void): Promise<TurnOutcome>;
  dispose(): void;
}

export interface ConversationOptions {
  systemText: string;
  /** The voice when the reply is spoken; null for text only. */
  speaker: Speaker | null;
  sampling: SamplingOptions;
  maxNewTokens: number;
  talker: { sampling?: SamplingOptions; maxNewTokens?: number };
  /** token2wav's sampling (default: the reference's rk4 over 10 time points). */
  synthesis?: SpeechSynthesis;
  cache?: CachePolicy;
}

/** What a failed stage cost once the pipeline brought it back. */
export interface Recovery {
  /** Stages rebuilt (weights reloaded), by name. */
  restarted: string[];
  /** The Thinker was rebuilt: every conversation's context is gone. */
  contextLost: boolean;
}

/** The stages a driver runs on, and their repair after a failure. */
export interface StageSet {
  readonly info: CheckpointInfo;
  stages(): Stages;
  /** Rebuilds whatever stage the failure broke (a dead worker, a lost device); nothing when none broke. */
  recover(error: unknown): Promise<Recovery>;
}

function isAborted(e: unknown): boolean {
  return e instanceof OmniError && e.code === 'ABORTED';
}

function asOmniError(e: unknown): OmniError {
  if (e instanceof OmniError) return e;
  return new OmniError('INTERNAL', `a turn failed unexpectedly: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

export class TurnDriver implements Conversation {
  readonly #pipeline: StageSet;
  readonly #options: ConversationOptions;
  readonly #prompts: PromptBuilder;
  readonly #stops: ReadonlySet<number>;
  /** Opened on first use, and again after the Thinker stage was rebuilt. */
  #thinker: Promise<ThinkerConversation> | null = null;
  /** The stage `#thinker` lives in: a rebuilt one holds no conversation of ours. */
  #thinkerStage: ThinkerStage | null = null;
  #disposed = false;

  constructor(pipeline: StageSet, options: ConversationOptions) {
    const { config, tokenizer } = pipeline.info;
    if (options.speaker && !pipeline.stages().talker) throw new OmniError('INTERNAL', 'a voice was resolved for a pipeline that cannot speak');
    // The Thinker conversation opens at the first turn; a bad cache policy is refused now.
    if (options.cache) createEvictionPolicy(options.cache);
    this.#pipeline = pipeline;
    this.#options = options;
    this.#prompts = new PromptBuilder(tokenizer, config.thinker, options.systemText, options.speaker !== null);
    const { eos, pad } = config.thinker.tokens;
    this.#stops = new Set([eos, pad].filter((id): id is number => id !== null));
  }

  async runTurn(input: SendInput, sink: TurnSink, signal: AbortSignal): Promise<TurnOutcome> {
    checkSendInput(input);
    if (this.#disposed) throw new OmniError('BAD_INPUT', 'this conversation was disposed');
    let marked = false;
    try {
      const media = await this.perceive(input);
      const thinker = await this.#conversation();
      const prompt = this.#prompts.build(input, media.layout, await thinker.state(), this.#stops);
      await thinker.markTurn();
      marked = true;
      const outcome: TurnOutcome = { promptTokens: prompt.ids.length, ids: [], codes: 0, interrupted: false, withdrawn: false };
      try {
        const speech = this.#options.speaker !== null;
        const rows = await this.prefillChunk({ ids: prompt.ids, positions: prompt.positions, media: media.rows, rows: speech }, signal);
        await this.reply(prompt, rows, sink, signal, outcome);
        // The reply may have been cut in the Talker or token2wav after the text was complete.
        outcome.interrupted = signal.aborted;
      } catch (e) {
        if (!(isAborted(e) && signal.aborted)) throw e;
        outcome.interrupted = true;
        // A prompt cut off before any answer is no message; a reply cut off is what was said.
        if (outcome.ids.length === 0) outcome.withdrawn = await thinker.rewindTurn();
      }
      return outcome;
    } catch (e) {
      throw await this.#fail(e, marked);
    }
  }

  async runLiveTurn(input: LiveTurnInput, sink: TurnSink, signal: AbortSignal, onProgress: (progress: LiveProgress) => void): Promise<TurnOutcome> {
    if (this.#disposed) throw new OmniError('BAD_INPUT', 'this conversation was disposed');
    let marked = false;
    try {
      const { config, preprocessor } = this.#pipeline.info;
      const live = new LiveTurn({
        thinkerConfig: config.thinker, preprocessor, perception: this.#pipeline.stages().perception,
        prompts: this.#prompts, stops: this.#stops, speech: this.#options.speaker !== null,
        state: async () => (await this.#conversation()).state(),
        markTurn: async () => {
          await (await this.#conversation()).markTurn();
          marked = true;
        },
        rewindTurn: async () => (await this.#conversation()).rewindTurn(),
        prefillChunk: (chunk, s) => this.prefillChunk(chunk, s),
        reply: (prompt, rows, out, s, outcome) => this.reply(prompt, rows, out, s, outcome),
      }, input, onProgress);
      return await live.run(sink, signal);
    } catch (e) {
      throw await this.#fail(e, marked);
    }
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    const thinker = this.#thinker;
    this.#thinker = null;
    this.#thinkerStage = null;
    // A stage that is gone has nothing left to free.
    void thinker?.then((t) => t.close()).catch(() => undefined);
  }

  /** Preprocesses and encodes a checked input's media in the perception stage. */
  perceive(input: SendInput): Promise<PerceivedMedia> {
    return this.#pipeline.stages().perception.perceive(input);
  }

  /**
   * Feeds one prompt chunk to the conversation's Thinker (ids, their absolute positions, the
   * encoder rows of its placeholders); `signal` cuts it short with ABORTED.
   */
  async prefillChunk(chunk: PrefillChunk, signal: AbortSignal): Promise<PrefillRows> {
    const thinker = await this.#conversation();
    const { media } = chunk;
    // The ids and positions are copied: the Talker's prompt reads them too.
    const sent = handOver(chunk, [media.audio?.data, media.image?.data, media.video?.data]);
    return this.#cut(signal, () => void thinker.abort(), () => thinker.prefill(sent));
  }

  /**
   * Generation after a prefilled prompt, and with speech the Talker and token2wav alongside it.
   * A failure in any stage stops all of them; the turn's own signal stops all at once and is
   * no failure.
   */
  async reply(prompt: TurnPrompt, prefill: PrefillRows, sink: TurnSink, signal: AbortSignal, outcome: TurnOutcome): Promise<void> {
    const stages = this.#pipeline.stages();
    const { tokenizer } = this.#pipeline.info;
    const thinker = await this.#conversation();
    const speaker = this.#options.speaker;
    const stop = new AbortController();
    let talker: TalkerReply | null = null;
    let speech: SpeechReply | null = null;
    // Each reply is stopped once: at the first failure or interruption, else at the end.
    let talkerStopped: Promise<void> | null = null;
    let speechStopped: Promise<void> | null = null;
    const stopTalker = () => (talkerStopped ??= talker?.stop().catch(() => undefined) ?? null);
    const stopSpeech = () => (speechStopped ??= speech?.stop().catch(() => undefined) ?? null);
    const onStop = () => {
      void thinker.abort().catch(() => undefined);
      void stopTalker();
      void stopSpeech();
    };
    stop.signal.addEventListener('abort', onStop);
    const onAbort = () => stop.abort();
    signal.addEventListener('abort', onAbort);
    // An interruption that came while the prompt was prefilled (too late to cut it) stops the reply before it begins.
    if (signal.aborted) stop.abort();
    let speaking: Promise<void> | null = null;
    let speechError: unknown = null;
    let failure: unknown = null;
    const speechFailed = (e: unknown) => {
      // Errors after the stop are its echo; the first cause is kept.
      if (!stop.signal.aborted) speechError = e;
      stop.abort();
    };
    try {
      if (speaker && stages.talker) {
        talker = await stages.talker.start(handOver({
          prompt: prompt.talkerInputs, hidden: prefill.hidden!, embeddings: prefill.embeddings!,
          speaker: { bosToken: speaker.bosToken }, ...this.#options.talker,
        }, [prefill.hidden, prefill.embeddings]));
      }
      const speak = async (codes: TalkerReply) => {
        const out = await stages.speech!.start({ cond: speaker!.cond, refMel: speaker!.refMel }, this.#options.synthesis ?? {});
        speech = out;
        if (stop.signal.aborted) await stopSpeech();
        const feed = async () => {
          for (let code = await codes.next(); code !== null; code = await codes.next()) {
            outcome.codes++;
            await out.push(code);
            await nextTask();
          }
          await out.end();
        };
        const play = async () => {
          for (let pcm = await out.next(); pcm !== null && !stop.signal.aborted; pcm = await out.next()) sink.audio(pcm);
        };
        await Promise.all([feed().catch(speechFailed), play().catch(speechFailed)]);
      };
      // Bytes of a character cut off by the end of the reply are dropped rather than shown as U+FFFD.
      const decoder = tokenizer?.streamingDecoder({ skipSpecialTokens: true }) ?? null;
      try {
        if (stop.signal.aborted) throw new OmniError('ABORTED', 'the reply was stopped before it began');
        await thinker.startReply({ maxNewTokens: this.#options.maxNewTokens, sampling: this.#options.sampling, rows: talker !== null });
        for (let token = await thinker.next(); token !== null; token = await thinker.next()) {
          // A token carries H and E of the token fed to make it: the previous reply token (§7.2).
          if (talker && outcome.ids.length > 0) {
            await talker.push(handOver(token.hidden!, [token.hidden]), handOver(token.embedding!, [token.embedding]));
            speaking ??= speak(talker);
          }
          outcome.ids.push(token.id);
          if (!this.#stops.has(token.id)) sink.text(token.id, decoder ? decoder.push(token.id) : '');
          if (stop.signal.aborted) throw new OmniError('ABORTED', 'generation was stopped');
          await nextTask();
        }
        await talker?.endOfText();
      } catch (e) {
        failure = e;
        stop.abort();
      }
      // A Thinker that is gone has no reply left to stop; its failure is already recorded.
      await thinker.stopReply().catch((e: unknown) => { failure ??= e; });
      await speaking;
    } finally {
      signal.removeEventListener('abort', onAbort);
      await Promise.all([stopTalker(), stopSpeech()]);
    }
    if (speechError) throw speechError;
    if (failure) throw failure;
  }

  #conversation(): Promise<ThinkerConversation> {
    const stage = this.#pipeline.stages().thinker;
    if (stage !== this.#thinkerStage) {
      this.#thinkerStage = stage;
      this.#thinker = stage.open({ cache: this.#options.cache });
    }
    return this.#thinker!;
  }

  /** Runs a stage call that `signal` cuts short through `cancel`. */
  async #cut<T>(signal: AbortSignal, cancel: () => void, call: () => Promise<T>): Promise<T> {
    if (signal.aborted) throw new OmniError('ABORTED', 'the turn was interrupted');
    signal.addEventListener('abort', cancel);
    try {
      return await call();
    } finally {
      signal.removeEventListener('abort', cancel);
    }
  }

  /**
   * After a failed turn: the pipeline repairs what broke, and a Thinker conversation that
   * survived forgets the turn (one rebuilt has no context to withdraw from).
   */
  async #fail(e: unknown, marked: boolean): Promise<OmniError> {
    const error = await this.#recover(e);
    if (marked && this.#thinker && this.#thinkerStage === this.#pipeline.stages().thinker) {
      const thinker = await this.#thinker.catch(() => null);
      await thinker?.rewindTurn().catch(() => false);
    }
    return error;
  }

  /** Has the pipeline repair what the failure broke, and says in the error what that cost. */
  async #recover(e: unknown): Promise<OmniError> {
    const error = asOmniError(e);
    let recovery: Recovery;
    try {
      recovery = await this.#pipeline.recover(e);
    } catch (failed) {
      return new OmniError(error.code, `${error.message}; restarting the failed stage failed too: ${asOmniError(failed).message}`, { cause: e });
    }
    if (recovery.restarted.length === 0) return error;
    const lost = recovery.contextLost ? '; the conversation starts afresh (the Thinker\'s context was lost)' : '';
    return new OmniError(error.code, `${error.message} — restarted the ${recovery.restarted.join(', ')} stage${recovery.restarted.length > 1 ? 's' : ''} with weights reloaded${lost}`, { cause: e });
  }
}
