// What an AudioWorkletGlobalScope provides, which TypeScript's DOM library does not declare.
declare abstract class AudioWorkletProcessor {
  readonly port: MessagePort;
  abstract process(inputs: Float32Array[][], outputs: Float32Array[][], parameters: Record<string, Float32Array>): boolean;
}
declare function registerProcessor(name: string, processor: new (options?: AudioWorkletNodeOptions) => AudioWorkletProcessor): void;
/** The context's rate, in Hz. */
declare const sampleRate: number;
