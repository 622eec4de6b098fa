// The hop benchmark's far end: hands every array it gets straight back, moved, not copied.
import { handOver, serveInWorker } from '@omniweb/orchestrator';

void serveInWorker({
  echo(arrays: Float32Array[]): Float32Array[] {
    return handOver(arrays, arrays);
  },
});
