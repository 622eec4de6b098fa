/** The page's elements (public/index.html) and how the state is shown in them. */
import type { DemoState } from './demoState.js';

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page lacks #${id}`);
  return found as T;
}

const ms = (value: number | null) => (value === null ? '—' : `${value} ms`);

export class View {
  readonly camera = element<HTMLVideoElement>('camera');
  readonly talk = element<HTMLButtonElement>('talk');
  readonly handsFree = element<HTMLInputElement>('hands-free');
  readonly modelForm = element<HTMLFormElement>('model-form');
  readonly modelUrl = element<HTMLInputElement>('model-url');
  readonly modelFolder = element<HTMLInputElement>('model-folder');
  readonly device = element<HTMLSelectElement>('device');
  readonly weights = element<HTMLSelectElement>('weights');
  readonly pipeline = element<HTMLSelectElement>('pipeline');
  readonly voice = element<HTMLSelectElement>('voice');
  readonly #state = element('state');
  readonly #userCaption = element('user-caption');
  readonly #answer = element('answer');
  readonly #progress = element<HTMLProgressElement>('load-progress');
  readonly #progressLabel = element('load-label');
  readonly #deviceUsed = element('device-used');
  readonly #deviceNotice = element('device-notice');
  readonly #tinyNotice = element('tiny-notice');
  readonly #firstText = element('latency-first-text');
  readonly #firstAudio = element('latency-first-audio');
  readonly #turnStats = element('turn-stats');
  readonly #played = element('played');
  readonly #encoded = element('encoded');
  readonly #errors = element('errors');

  /** Everything derived from the state alone. */
  render(state: DemoState): void {
    this.#state.textContent = state.state;
    const loaded = ['ready', 'listening', 'recording', 'thinking', 'answering'].includes(state.state);
    this.talk.disabled = !loaded || state.handsFree;
    this.handsFree.disabled = !loaded;
    this.talk.classList.toggle('active', state.state === 'recording');
    this.#userCaption.textContent = {
      loading: 'loading the model…',
      ready: 'hold the button (or switch on hands-free) and speak',
      listening: 'listening — just speak',
      recording: 'you are speaking…',
      thinking: 'thinking…',
      answering: 'answering',
      error: 'not ready: see the errors below',
    }[state.state];
    this.#deviceUsed.textContent = state.device === null ? '—' : `${state.device} (${state.deviceName}), ${state.pipeline}`;
    this.#firstText.textContent = ms(state.latencyMs.firstText);
    this.#firstAudio.textContent = ms(state.latencyMs.firstAudio);
    const last = state.turns.at(-1);
    this.#turnStats.textContent = last
      ? `${last.textTokens} tokens, ${last.codes} codes → ${(last.audioSamples / 24_000).toFixed(2)} s of speech${last.withdrawn ? ' (withdrawn: interrupted before the answer)' : last.interrupted ? ' (interrupted)' : ''}`
      : '—';
    this.#played.textContent = `${state.audioSamplesPlayed} samples${state.playing ? ' (playing)' : ''}`;
    this.#encoded.textContent = `${state.encodedAudioBlocks} audio blocks, ${state.encodedVideoFrames} video frames`
      + (state.droppedVideoFrames > 0 ? ` (${state.droppedVideoFrames} dropped: the vision encoder was behind)` : '');
  }

  showAnswer(text: string): void {
    this.#answer.textContent = text;
  }

  showProgress(fraction: number, label: string): void {
    this.#progress.value = fraction;
    this.#progressLabel.textContent = label;
  }

  showDeviceNotice(text: string | null): void {
    this.#deviceNotice.hidden = text === null;
    this.#deviceNotice.textContent = text ?? '';
  }

  showTinyNotice(visible: boolean): void {
    this.#tinyNotice.hidden = !visible;
  }

  showVoices(voices: readonly string[], selected: string | null): void {
    this.voice.replaceChildren(...voices.map((name) => new Option(name, name, false, name === selected)));
    this.voice.disabled = voices.length === 0;
  }

  addError(message: string): void {
    const item = document.createElement('li');
    item.textContent = message;
    this.#errors.append(item);
  }
}
