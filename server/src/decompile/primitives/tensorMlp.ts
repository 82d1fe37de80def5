// Opaque MLP lines on the tensor backend, for the primitives stage's screening runs. On a width-256 model every
// candidate that changes a select upstream of the MLP re-runs d_model x 4·d_model twice per position for a few
// hundred sequences; the interpreter's exact float64 loops do ~1.4 GFLOP/s, the wasm backend's matmuls ~10x that.
// Screening only ranks candidates against the model's decisions, which the model computed in float32 itself; the
// winners are confirmed, and the final program checked, by the exact interpreter.
import * as tf from '@tensorflow/tfjs';
import type { MlpKernel, Rows } from '../../interpreter/elementwise';
import { geluNew } from '../../model/forward';
import type { OpaqueMlp } from '../../program/types';

interface MlpTensors {
  /** The input embeddings stacked: sum_k basis(x_k) x d_model. */
  embed: tf.Tensor2D;
  constant: tf.Tensor1D | undefined;
  /** gamma / sqrt(variance + eps): the linear layer norm's scale. */
  scale: tf.Tensor1D;
  fcW: tf.Tensor2D;
  fcB: tf.Tensor1D;
  projW: tf.Tensor2D;
  projB: tf.Tensor1D;
  width: number;
}

/** MLP weights kept on the backend (candidates share their MLP objects: a handful are live at a time). */
const KEEP = 8;

const f32 = (a: Float32Array | Float64Array): Float32Array => (a instanceof Float32Array ? a : Float32Array.from(a));

function upload(mlp: OpaqueMlp): MlpTensors {
  const d = mlp.fcW.rows;
  const width = mlp.inputEmbeddings.reduce((s, e) => s + e.rows, 0);
  const stacked = new Float32Array(width * d);
  let at = 0;
  for (const e of mlp.inputEmbeddings) {
    stacked.set(e.data, at);
    at += e.data.length;
  }
  const invStd = 1 / Math.sqrt(mlp.lnVariance + mlp.lnEps);
  return {
    embed: tf.tensor2d(stacked, [width, d]),
    constant: mlp.constant ? tf.tensor1d(mlp.constant) : undefined,
    scale: tf.tensor1d(Float32Array.from(mlp.lnGamma, (g) => g * invStd)),
    fcW: tf.tensor2d(f32(mlp.fcW.data), [mlp.fcW.rows, mlp.fcW.cols]),
    fcB: tf.tensor1d(mlp.fcB),
    projW: tf.tensor2d(f32(mlp.projW.data), [mlp.projW.rows, mlp.projW.cols]),
    projB: tf.tensor1d(mlp.projB),
    width,
  };
}

function release(t: MlpTensors): void {
  for (const x of [t.embed, t.constant, t.scale, t.fcW, t.fcB, t.projW, t.projB]) x?.dispose();
}

/** A kernel for ExecutionOptions.mlpKernel; the active tfjs backend must be ready (the model's, in extract). */
export function tensorMlpKernel(): MlpKernel {
  const live = new Map<OpaqueMlp, MlpTensors>();
  const tensorsOf = (mlp: OpaqueMlp): MlpTensors => {
    let t = live.get(mlp);
    if (t) {
      // most recently used last
      live.delete(mlp);
    } else {
      t = upload(mlp);
      if (live.size >= KEEP) {
        const [oldest, weights] = live.entries().next().value as [OpaqueMlp, MlpTensors];
        release(weights);
        live.delete(oldest);
      }
    }
    live.set(mlp, t);
    return t;
  };
  return (mlp: OpaqueMlp, inputs: Rows[], n: number): Float64Array => {
    const d = mlp.projW.cols;
    if (n === 0) return new Float64Array(0);
    const t = tensorsOf(mlp);
    // [x_1 | x_2 | ...] per position, against the stacked embeddings
    const x = new Float32Array(n * t.width);
    for (let i = 0; i < n; i++) {
      let at = i * t.width;
      for (const inp of inputs) {
        const s = inp.basis.size;
        x.set(inp.data.subarray(i * s, (i + 1) * s), at);
        at += s;
      }
    }
    const y = tf.tidy(() => {
      let h: tf.Tensor2D = tf.matMul(tf.tensor2d(x, [n, t.width]), t.embed);
      if (t.constant) h = tf.add(h, t.constant);
      h = tf.mul(tf.sub(h, tf.mean(h, 1, true)), t.scale);
      const a = geluNew(tf.add(tf.matMul(h, t.fcW), t.fcB));
      return tf.add(tf.matMul(a, t.projW), t.projB);
    });
    const out = Float64Array.from(y.dataSync());
    y.dispose();
    if (out.length !== n * d) throw new Error(`tensor MLP kernel: expected ${n * d} values, got ${out.length}`);
    return out;
  };
}
