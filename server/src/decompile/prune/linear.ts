// Linear maps for the masked model on the wasm backend's fast path (tfjs-wasm-performance.md 1): XNNPACK is fast
// only for single, non-transposed products, and autograd of x W needs transposed ones. A frozen map keeps a
// pre-transposed copy for its input gradient; a trainable map transposes explicitly (a cheap copy) so both of its
// gradients, dy W^T and x^T dy, are non-transposed products too.
import * as tf from '@tensorflow/tfjs';

export type Linear = (x: tf.Tensor2D) => tf.Tensor2D;

export function frozenLinear(data: Float32Array, rows: number, cols: number): { fn: Linear; tensors: tf.Tensor[] } {
  const w = tf.tensor2d(data, [rows, cols]);
  const wt = tf.transpose(w);
  const f = tf.customGrad((...args: unknown[]) => ({
    value: tf.matMul(args[0] as tf.Tensor2D, w),
    gradFunc: (dy: tf.Tensor | tf.Tensor[]) => tf.matMul(dy as tf.Tensor2D, wt),
  }));
  return { fn: (x) => f(x) as tf.Tensor2D, tensors: [w, wt] };
}

/**
 * x W with gradients for both x and W (W may be a variable or a tensor computed from one). The inputs go through
 * `save`: intermediates of the forward pass are disposed before the backward pass unless saved.
 */
export const trainableLinear = tf.customGrad((...args: unknown[]) => {
  const x = args[0] as tf.Tensor2D;
  const w = args[1] as tf.Tensor2D;
  (args[2] as tf.GradSaveFunc)([x, w]);
  return {
    value: tf.matMul(x, w),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
      return [tf.matMul(dy as tf.Tensor2D, tf.transpose(ws)), tf.matMul(tf.transpose(xs), dy as tf.Tensor2D)];
    },
  };
}) as (x: tf.Tensor2D, w: tf.Tensor2D) => tf.Tensor2D;
