/** The latencies a user feels, per turn: end of their speech → first text token → first audio. */
export interface TurnLatency {
  firstText: number | null;
  firstAudio: number | null;
}

export class LatencyClock {
  #speechEndedAt: number | null = null;
  #latency: TurnLatency = { firstText: null, firstAudio: null };

  /** The user stopped speaking (push-to-talk released, or the VAD's speech end at `atMs`). */
  speechEnded(atMs = performance.now()): void {
    this.#speechEndedAt = atMs;
    this.#latency = { firstText: null, firstAudio: null };
  }

  /** A reply token arrived; true when it was the turn's first. */
  text(): boolean {
    if (this.#speechEndedAt === null || this.#latency.firstText !== null) return false;
    this.#latency.firstText = Math.round(performance.now() - this.#speechEndedAt);
    return true;
  }

  /** Reply audio reached the player; true when it was the turn's first. */
  audio(): boolean {
    if (this.#speechEndedAt === null || this.#latency.firstAudio !== null) return false;
    this.#latency.firstAudio = Math.round(performance.now() - this.#speechEndedAt);
    return true;
  }

  get latency(): TurnLatency {
    return { ...this.#latency };
  }
}
