// microphonePcm on a synthetic "microphone": an oscillator routed into a MediaStream, so the
// capture path (AudioWorklet tap, Blob-URL module, resampling to 16 kHz) runs as with a real one.
import { microphonePcm } from '@omniweb/media';

/** Captures `seconds` of a `hz` sine (amplitude 0.5) played at `contextRate`; returns the 16 kHz PCM. */
async function captureTone(hz, seconds, contextRate) {
  const context = new AudioContext({ sampleRate: contextRate });
  const oscillator = new OscillatorNode(context, { frequency: hz });
  const gain = new GainNode(context, { gain: 0.5 });
  const sink = new MediaStreamAudioDestinationNode(context, { channelCount: 1 });
  oscillator.connect(gain).connect(sink);
  oscillator.start();
  const stop = new AbortController();
  const chunks = [];
  let total = 0;
  for await (const chunk of microphonePcm(sink.stream, { signal: stop.signal })) {
    chunks.push(Array.from(chunk));
    total += chunk.length;
    if (total >= seconds * 16000) stop.abort();
  }
  oscillator.stop();
  await context.close();
  return { samples: chunks.flat(), chunks: chunks.length };
}

window.omniMic = { captureTone };
