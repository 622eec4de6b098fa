/**
 * A conversation as the public API shows it: `send` runs one turn (turns run one after
 * another), `attach` feeds live turns from a microphone and camera, `events()` streams what
 * the turns produce, `interrupt()` cuts the current reply short, `close()` ends the
 * conversation. The stages behind it are a `Conversation`.
 */
import { OmniError } from '@omniweb/core';
import type { Conversation, LiveTurnInput, SendInput, TurnOutcome, TurnSink } from '@omniweb/orchestrator';
import { LiveAttachment, type AttachOptions, type Attachment } from './attachment.js';
import { EventQueue, type OmniEvent, type TurnStats } from './events.js';

export interface TurnResult {
  /** The reply's text (empty without a tokenizer). */
  text: string;
  /** Every generated id, the stop token included. */
  ids: number[];
  stats: TurnStats;
  interrupted: boolean;
  /** Interrupted before the first reply token: the turn was taken back and the conversation is as it was before it. */
  withdrawn: boolean;
}

/** Runs a task once every earlier task of the same scheduler has settled (turns share the device). */
export type TurnScheduler = <T>(task: () => Promise<T>) => Promise<T>;

function asOmniError(e: unknown): OmniError {
  if (e instanceof OmniError) return e;
  return new OmniError('INTERNAL', `a turn failed unexpectedly: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

export class OmniSession {
  readonly #conversation: Conversation;
  readonly #schedule: TurnScheduler;
  readonly #events = new EventQueue();
  readonly #sampleRate: number;
  readonly #onClose: () => void;
  #turns = 0;
  #current: AbortController | null = null;
  #closed = false;
  /** Settles when the last send given has run. */
  #tail: Promise<unknown> = Promise.resolve();
  #attachment: LiveAttachment | null = null;
  /** Speech starting interrupts the reply (barge-in): hands-free turn-taking. */
  #bargeIn = false;

  /** @internal Sessions come from `omni.session()`. */
  constructor(conversation: Conversation, schedule: TurnScheduler, sampleRate: number, onClose: () => void) {
    this.#conversation = conversation;
    this.#schedule = schedule;
    this.#sampleRate = sampleRate;
    this.#onClose = onClose;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Runs one turn after any turn already given. Resolves when the reply (text and speech) is
   * complete or interrupted; rejects with OmniError when the input is bad or a stage fails,
   * after reporting it as an `error` event. Either way the session takes the next send.
   */
  send(input: SendInput): Promise<TurnResult> {
    if (this.#closed) return Promise.reject(new OmniError('BAD_INPUT', 'this session is closed; open a new one with omni.session()'));
    if (this.#attachment?.turnOpen) {
      return Promise.reject(new OmniError('BAD_INPUT', 'a live turn is open (the user is speaking); send after it ends, or call endTurn() first'));
    }
    return this.#enqueue((sink, signal) => this.#conversation.runTurn(input, sink, signal));
  }

  /**
   * Feeds live turns from `audio` (a microphone MediaStream, or `{ sampleRate, chunks }`) and
   * optionally `video` (a camera MediaStream, or timed frames): each turn is encoded and
   * prefilled while the user speaks, and replied to when the turn ends — by the speech
   * detector (`turnTaking: 'vad'`, the default; speech starting during a reply interrupts
   * it) or by `endTurn()` ('manual'). Live turns queue with sends; `send()` is refused while
   * a live turn's input is still arriving. One attachment per session at a time.
   * Events: `speech` start/end, `stats` while a turn is encoded and prefilled, then the turn's.
   */
  attach(options: AttachOptions): Attachment {
    if (this.#closed) throw new OmniError('BAD_INPUT', 'this session is closed; open a new one with omni.session()');
    if (this.#attachment) throw new OmniError('BAD_INPUT', 'this session already has live inputs attached; detach() them first');
    this.#bargeIn = (options?.turnTaking ?? 'vad') === 'vad';
    const attachment = new LiveAttachment(options, {
      startTurn: (input) => this.#startLive(input),
      speech: (event) => {
        this.#events.push({ type: 'speech', phase: event.phase, atMs: event.atMs });
        if (event.phase === 'start' && this.#bargeIn) this.interrupt();
      },
      failed: (error) => this.#events.push({ type: 'error', error }),
      detached: () => {
        if (this.#attachment === attachment) this.#attachment = null;
      },
    });
    this.#attachment = attachment;
    return attachment;
  }

  /** Ends the open live turn now (push-to-talk release): the reply follows. BAD_INPUT when no turn is open. */
  endTurn(): void {
    if (!this.#attachment?.endTurn()) throw new OmniError('BAD_INPUT', 'no live turn is open: attach inputs first, and end a turn while it is open');
  }

  /**
   * Every event from the session's start on, in order, kept until read; ends after `close()`.
   * One reader at a time.
   */
  events(): AsyncGenerator<OmniEvent, void, undefined> {
    return this.#events.read();
  }

  /**
   * Stops the current turn at once. During the reply (generation, Talker and token2wav) the
   * conversation keeps what was said; before its first token (a prompt still being prefilled,
   * a live turn still being heard) the turn is withdrawn, as if it had not been sent.
   */
  interrupt(): void {
    this.#current?.abort();
  }

  /** Interrupts the current reply, waits for it, and frees the conversation. Sends still queued are refused. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#attachment?.detach();
    this.interrupt();
    await this.#tail;
    this.#conversation.dispose();
    this.#events.end();
    this.#onClose();
  }

  /** Runs `body` as the next turn once every earlier one has run. */
  #enqueue(body: (sink: TurnSink, signal: AbortSignal, turn: number) => Promise<TurnOutcome>): Promise<TurnResult> {
    const run = this.#tail.then(() => this.#schedule(() => this.#run(body)));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /** Queues a live turn; its failure is reported as the turn's error event. */
  #startLive(input: LiveTurnInput): void {
    void this.#enqueue((sink, signal, turn) => this.#conversation.runLiveTurn(input, sink, signal, (progress) => {
      this.#events.push({ type: 'stats', turn, ...progress });
    })).catch(() => undefined);
  }

  async #run(body: (sink: TurnSink, signal: AbortSignal, turn: number) => Promise<TurnOutcome>): Promise<TurnResult> {
    if (this.#closed) throw new OmniError('BAD_INPUT', 'the session was closed before this send ran');
    const turn = ++this.#turns;
    const abort = new AbortController();
    this.#current = abort;
    const started = performance.now();
    const since = () => Math.round((performance.now() - started) * 10) / 10;
    const stats: TurnStats = { firstTextMs: null, firstAudioMs: null, promptTokens: 0, tokens: 0, codes: 0, totalMs: 0 };
    let text = '';
    const sink: TurnSink = {
      text: (id, piece) => {
        stats.firstTextMs ??= since();
        text += piece;
        this.#events.push({ type: 'text', text: piece, id });
      },
      audio: (pcm) => {
        if (abort.signal.aborted) return;
        stats.firstAudioMs ??= since();
        this.#events.push({ type: 'audio', pcm, sampleRate: this.#sampleRate });
      },
    };
    this.#events.push({ type: 'turn', phase: 'start', turn });
    try {
      const outcome = await body(sink, abort.signal, turn);
      Object.assign(stats, { promptTokens: outcome.promptTokens, tokens: outcome.ids.length, codes: outcome.codes, totalMs: since() });
      const { interrupted, withdrawn } = outcome;
      this.#events.push({ type: 'turn', phase: 'end', turn, stats, interrupted, withdrawn });
      return { text, ids: outcome.ids, stats, interrupted, withdrawn };
    } catch (e) {
      const error = asOmniError(e);
      stats.totalMs = since();
      this.#events.push({ type: 'error', error });
      this.#events.push({ type: 'turn', phase: 'end', turn, stats, interrupted: false, withdrawn: false });
      throw error;
    } finally {
      this.#current = null;
    }
  }
}
