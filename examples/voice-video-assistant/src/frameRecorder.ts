/**
 * Push-to-talk video: the camera's frames at the model's 2 fps (media's `cameraFrames`),
 * kept between `start()` and `stop()`.
 */
import { isOmniError } from '@omniweb/core';
import { cameraFrames, type RgbImage } from '@omniweb/media';
import type { VideoFrames } from '@omniweb/sdk';

/** The rate Qwen2.5-Omni samples video at (fact sheet §4.2). */
const MODEL_FPS = 2;

export class FrameRecorder {
  #frames: RgbImage[] = [];
  #abort: AbortController | null = null;
  #reading: Promise<void> = Promise.resolve();

  start(track: MediaStreamTrack): void {
    const abort = new AbortController();
    const frames: RgbImage[] = [];
    this.#abort = abort;
    this.#frames = frames;
    this.#reading = (async () => {
      try {
        for await (const frame of cameraFrames(track, { fps: MODEL_FPS, signal: abort.signal })) frames.push(frame.image);
      } catch (e) {
        if (!(isOmniError(e, 'ABORTED') && abort.signal.aborted)) throw e;
      }
    })();
  }

  /** The frames since `start()`; null when fewer than a temporal patch (2 frames) came. */
  async stop(): Promise<VideoFrames | null> {
    this.#abort?.abort();
    this.#abort = null;
    await this.#reading;
    return this.#frames.length >= 2 ? { frames: this.#frames, fps: MODEL_FPS } : null;
  }
}
