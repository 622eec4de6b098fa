import type * as tfType from '@tensorflow/tfjs-core';
import type { Peer } from '../kernels/suite.js';

/** tfjs `matMul` on one of its backends, as the peer op. */
export function tfjsPeer(tf: typeof tfType, backendName: string, label: string): Peer {
  return {
    name: label,
    async prepare(shape, a, b) {
      await tf.setBackend(backendName);
      await tf.ready();
      const ta = tf.tensor2d(a, [shape.m, shape.k]);
      const tb = tf.tensor2d(b, [shape.k, shape.n]);
      return {
        async run() {
          const c = tf.matMul(ta, tb);
          await c.data();
          c.dispose();
        },
        dispose() { ta.dispose(); tb.dispose(); },
      };
    },
  };
}
