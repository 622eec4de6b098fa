// Appended inside the module factory (emcc --post-js), in both builds: the heap's current
// buffer (it is replaced when memory grows, possibly from a pool thread), a way to end
// the pool's workers, and one to let Node exit while idle workers are alive.
Module['heapBuffer'] = function () {
  return wasmMemory.buffer;
};
if (typeof PThread !== 'undefined') {
  Module['terminateWorkers'] = function () {
    PThread.terminateAllThreads();
  };
  Module['unrefWorkers'] = function () {
    for (var w of PThread.unusedWorkers.concat(PThread.runningWorkers)) if (w.unref) w.unref();
  };
}
