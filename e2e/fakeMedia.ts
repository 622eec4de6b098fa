/**
 * Files for Chromium's fake capture devices (`--use-file-for-fake-audio-capture`,
 * `--use-file-for-fake-video-capture`): speech spoken by espeak-ng, and a small y4m clip.
 * Chromium loops both for as long as the page captures.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { decodeWav, encodeWav } from '@omniweb/media';

export interface SpeechWav {
  path: string;
  /** Seconds of speech, then `silenceSeconds` of silence, in one loop of the file. */
  speechSeconds: number;
  silenceSeconds: number;
  sampleRate: number;
}

/** `text` spoken by espeak-ng (Debian's `espeak-ng`), followed by silence so a loop has a pause a VAD can hear as the end of a turn. */
export function writeSpeechWav(path: string, text: string, silenceSeconds: number): SpeechWav {
  execFileSync('espeak-ng', ['-w', path, text]);
  const speech = decodeWav(new Uint8Array(readFileSync(path)));
  const silence = Math.round(silenceSeconds * speech.sampleRate);
  const samples = new Float32Array(speech.samples.length + silence);
  samples.set(speech.samples);
  writeFileSync(path, encodeWav(samples, speech.sampleRate));
  return { path, speechSeconds: speech.samples.length / speech.sampleRate, silenceSeconds, sampleRate: speech.sampleRate };
}

export interface Y4mClip {
  width: number;
  height: number;
  fps: number;
  frames: number;
}

/**
 * A YUV4MPEG2 clip (4:2:0, full range) of a bright square moving over a vertical gradient,
 * so consecutive frames differ.
 */
export function writeY4m(path: string, clip: Y4mClip): void {
  const { width, height, fps, frames } = clip;
  if (width % 2 !== 0 || height % 2 !== 0) throw new Error(`y4m 4:2:0 needs even sides, got ${width}×${height}`);
  const header = `YUV4MPEG2 W${width} H${height} F${fps}:1 Ip A1:1 C420jpeg XCOLORRANGE=FULL\n`;
  const lumaBytes = width * height;
  const chromaBytes = (width / 2) * (height / 2);
  const frameHeader = 'FRAME\n';
  const out = new Uint8Array(header.length + frames * (frameHeader.length + lumaBytes + 2 * chromaBytes));
  let offset = 0;
  const ascii = (text: string) => {
    for (let i = 0; i < text.length; i++) out[offset++] = text.charCodeAt(i);
  };
  ascii(header);
  const side = Math.max(2, Math.floor(Math.min(width, height) / 3));
  for (let f = 0; f < frames; f++) {
    ascii(frameHeader);
    const left = Math.floor(((width - side) * f) / Math.max(1, frames - 1));
    const top = Math.floor((height - side) / 2);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const inSquare = x >= left && x < left + side && y >= top && y < top + side;
        out[offset++] = inSquare ? 235 : 16 + Math.floor((160 * y) / height);
      }
    }
    // Chroma planes: the square bluish, the background neutral grey.
    for (const plane of [0, 1]) {
      for (let y = 0; y < height / 2; y++) {
        for (let x = 0; x < width / 2; x++) {
          const inSquare = 2 * x >= left && 2 * x < left + side && 2 * y >= top && 2 * y < top + side;
          out[offset++] = inSquare ? (plane === 0 ? 200 : 90) : 128;
        }
      }
    }
  }
  writeFileSync(path, out);
}
