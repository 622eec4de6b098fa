/**
 * Browser camera frames for the live video path. Chrome's MediaStreamTrackProcessor
 * gives VideoFrames with capture timestamps (also inside workers); elsewhere a muted
 * <video> element with requestVideoFrameCallback gives each presented frame and its
 * media time. Frames are thinned to `fps` (FrameRateSampler) before their pixels are
 * read, so a 30 fps camera costs 2 canvas read-backs per second, not 30.
 * Feed the result to `liveVideoPatches` (its own sampler keeps exactly these frames).
 */
import { OmniError } from '@omniweb/core';
import { canvasPixels } from './decode.js';
import { FrameRateSampler, type TimedFrame } from './video.js';

/** Chrome's MediaStreamTrackProcessor, which TypeScript's DOM library does not declare. */
type TrackProcessorConstructor = new (init: { track: MediaStreamTrack }) => { readonly readable: ReadableStream<VideoFrame> };

export interface CameraFramesOptions {
  /** Frames kept per second (default 2, the model's rate, §4.2). */
  fps?: number;
  signal?: AbortSignal;
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new OmniError('ABORTED', 'camera frames: the caller aborted', { cause: signal.reason });
}

/** Timestamped RGB frames of a live video track, at most `fps` per second, until the track ends. */
export async function* cameraFrames(track: MediaStreamTrack, options: CameraFramesOptions = {}): AsyncGenerator<TimedFrame> {
  if (typeof MediaStreamTrack === 'undefined' || !(track instanceof MediaStreamTrack) || track.kind !== 'video') {
    throw new OmniError('BAD_INPUT', 'cameraFrames takes a video MediaStreamTrack (browser only)');
  }
  const sampler = new FrameRateSampler(options.fps ?? 2);
  const Processor = (globalThis as { MediaStreamTrackProcessor?: TrackProcessorConstructor }).MediaStreamTrackProcessor;
  if (Processor) {
    const reader = new Processor({ track }).readable.getReader();
    try {
      for (;;) {
        checkAborted(options.signal);
        const { value: frame, done } = await reader.read();
        if (done) return;
        let kept: TimedFrame | null = null;
        try {
          // VideoFrame timestamps are microseconds.
          const timestampSeconds = frame.timestamp / 1e6;
          if (sampler.accept(timestampSeconds)) {
            kept = { image: canvasPixels(frame, frame.displayWidth, frame.displayHeight, false), timestampSeconds };
          }
        } finally {
          frame.close();
        }
        if (kept) yield kept;
      }
    } finally {
      await reader.cancel();
    }
  }
  if (typeof document === 'undefined') {
    throw new OmniError('BAD_INPUT', 'cameraFrames: no MediaStreamTrackProcessor and no document for a <video> element (a worker without track processing)');
  }
  const video = document.createElement('video');
  video.muted = true;
  video.playsInline = true;
  video.srcObject = new MediaStream([track]);
  try {
    await video.play();
    // The next presented frame, or null once the track ends or the caller aborts (no frame would come).
    const nextFrame = () => new Promise<VideoFrameCallbackMetadata | null>((resolve) => {
      const stop = () => resolve(null);
      track.addEventListener('ended', stop, { once: true });
      options.signal?.addEventListener('abort', stop, { once: true });
      video.requestVideoFrameCallback((_, metadata) => {
        track.removeEventListener('ended', stop);
        options.signal?.removeEventListener('abort', stop);
        resolve(metadata);
      });
    });
    while (track.readyState === 'live') {
      checkAborted(options.signal);
      const metadata = await nextFrame();
      checkAborted(options.signal);
      if (!metadata) return;
      if (sampler.accept(metadata.mediaTime)) {
        yield { image: canvasPixels(video, metadata.width, metadata.height, false), timestampSeconds: metadata.mediaTime };
      }
    }
  } finally {
    video.pause();
    video.srcObject = null;
  }
}
