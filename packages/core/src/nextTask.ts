/**
 * Resolves after the tasks already queued have run — a message from another thread (an
 * abort), a microphone's chunk, a UI event. Work on the wasm backend answers in microtasks,
 * so a long loop of it holds its thread to the end unless it awaits this between steps.
 */
export function nextTask(): Promise<void> {
  if (typeof setImmediate === 'function') return new Promise((resolve) => setImmediate(resolve));
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}
