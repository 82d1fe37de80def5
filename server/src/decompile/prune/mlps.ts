// The MLP weights of the masked model as learnable state: one set per MLP unit (an unsplit MLP, or one split copy,
// graph.ts MlpUnit), each  y = gelu_new(s_c (u F) + fcB) P + projB  with F the LN-folded c_fc (C diag(gamma) W_fc).
//
// Pruning keeps them frozen on the fast path (frozen linear maps rebuilt from the weights whenever they change);
// only the faithful-fit fine-tune and the split-copy pre-training switch `training` on and pay for the weight
// gradients (the transposed products of linear.ts). F is kept centred (every column sums to zero): the trainable
// path centres it on the fly, so that an update can never make the masked model depend on the input's mean, which
// the LLN-A program (and the opaque `mlp` line, which centres its input itself) cannot express.
import * as tf from '@tensorflow/tfjs';
import { frozenLinear, trainableLinear, type Linear } from './linear';

/** Plain, structured-cloneable weights of one MLP unit: F (d x 4d, folded and centred), its bias, c_proj, its bias. */
export interface MlpWeights {
  fc: Float32Array;
  fcB: Float32Array;
  proj: Float32Array;
  projB: Float32Array;
}

interface Vars {
  fc: tf.Variable;
  fcB: tf.Variable;
  proj: tf.Variable;
  projB: tf.Variable;
}

/** Subtracts each column's mean (rows x cols, row-major), in place. */
export function centreColumns(w: Float32Array, rows: number, cols: number): Float32Array {
  for (let c = 0; c < cols; c++) {
    let mean = 0;
    for (let r = 0; r < rows; r++) mean += w[r * cols + c];
    mean /= rows;
    for (let r = 0; r < rows; r++) w[r * cols + c] -= mean;
  }
  return w;
}

export function copyMlpWeights(w: MlpWeights): MlpWeights {
  return { fc: Float32Array.from(w.fc), fcB: Float32Array.from(w.fcB), proj: Float32Array.from(w.proj), projB: Float32Array.from(w.projB) };
}

const C2 = 2 * Math.sqrt(2 / Math.PI);

/**
 * gelu_new(x) = x * sigmoid(z), z = 2c(x + 0.044715 x^3) (sigmoid is far cheaper than tanh on wasm), with its
 * derivative sigmoid(z) (1 + x (1 - sigmoid(z)) z'(x)), z' = 2c(1 + 0.134145 x^2), written out: a few kernels
 * on the 4d-wide hidden layer instead of autodiff's chain through pow, which dominate a split copy's step.
 */
export const gelu = tf.customGrad((...args: unknown[]) => {
  const x = args[0] as tf.Tensor2D;
  const sq = tf.square(x);
  const sig = tf.sigmoid(tf.mul(x, tf.add(tf.mul(sq, C2 * 0.044715), C2)));
  (args[1] as tf.GradSaveFunc)([x, sq, sig]);
  return {
    value: tf.mul(x, sig),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [xs, sqs, sigs] = saved;
      const dz = tf.add(tf.mul(sqs, C2 * 3 * 0.044715), C2);
      const d = tf.mul(sigs, tf.add(1, tf.mul(tf.mul(xs, tf.sub(1, sigs)), dz)));
      return tf.mul(dy as tf.Tensor, d);
    },
  };
}) as (x: tf.Tensor2D) => tf.Tensor2D;

export class MlpBank {
  private readonly vars: Vars[];
  private fast: { fc: Linear; proj: Linear; tensors: tf.Tensor[] }[] = [];
  private trainingOn = false;

  constructor(
    private readonly d: number,
    init: readonly MlpWeights[],
  ) {
    this.vars = init.map((w) => ({
      fc: tf.variable(tf.tensor2d(w.fc, [d, 4 * d]), true),
      fcB: tf.variable(tf.tensor1d(w.fcB), true),
      proj: tf.variable(tf.tensor2d(w.proj, [4 * d, d]), true),
      projB: tf.variable(tf.tensor1d(w.projB), true),
    }));
    this.refreeze();
  }

  get count(): number {
    return this.vars.length;
  }

  get training(): boolean {
    return this.trainingOn;
  }

  /** On: the forward uses the variables (weight gradients). Off: the frozen fast path, rebuilt from the weights. */
  setTraining(on: boolean): void {
    if (this.trainingOn && !on) this.set(this.weights());
    this.trainingOn = on;
  }

  /** The variables of the given units (all by default), for an optimiser. */
  variables(units?: readonly number[]): tf.Variable[] {
    return (units ?? this.vars.map((_, i) => i)).flatMap((i) => [this.vars[i].fc, this.vars[i].fcB, this.vars[i].proj, this.vars[i].projB]);
  }

  /** Copies of the current weights, F centred. */
  weights(): MlpWeights[] {
    const d = this.d;
    return this.vars.map((v) => ({
      fc: centreColumns(Float32Array.from(v.fc.dataSync()), d, 4 * d),
      fcB: Float32Array.from(v.fcB.dataSync()),
      proj: Float32Array.from(v.proj.dataSync()),
      projB: Float32Array.from(v.projB.dataSync()),
    }));
  }

  set(ws: readonly MlpWeights[]): void {
    if (ws.length !== this.vars.length) throw new Error(`internal: ${ws.length} MLP weight sets for ${this.vars.length} MLP units`);
    const d = this.d;
    tf.tidy(() => {
      ws.forEach((w, i) => {
        const v = this.vars[i];
        v.fc.assign(tf.tensor2d(centreColumns(Float32Array.from(w.fc), d, 4 * d), [d, 4 * d]));
        v.fcB.assign(tf.tensor1d(w.fcB));
        v.proj.assign(tf.tensor2d(w.proj, [4 * d, d]));
        v.projB.assign(tf.tensor1d(w.projB));
      });
    });
    this.refreeze();
  }

  private refreeze(): void {
    for (const f of this.fast) for (const t of f.tensors) t.dispose();
    const d = this.d;
    this.fast = this.vars.map((v) => {
      const fc = frozenLinear(centreColumns(Float32Array.from(v.fc.dataSync()), d, 4 * d), d, 4 * d);
      const proj = frozenLinear(Float32Array.from(v.proj.dataSync()), 4 * d, d);
      return { fc: fc.fn, proj: proj.fn, tensors: [...fc.tensors, ...proj.tensors] };
    });
  }

  /** Unit i on its (N x d) input with LN scale s: gelu_new(s (x F) + fcB) P + projB. */
  apply(i: number, x: tf.Tensor2D, s: tf.Tensor): tf.Tensor2D {
    const v = this.vars[i];
    if (!this.trainingOn) {
      const f = this.fast[i];
      return tf.add(f.proj(gelu(tf.add(tf.mul(f.fc(x), s), v.fcB) as tf.Tensor2D)), v.projB) as tf.Tensor2D;
    }
    const F = tf.sub(v.fc, tf.mean(v.fc, 0, true)) as tf.Tensor2D;
    const h = gelu(tf.add(tf.mul(trainableLinear(x, F), s), v.fcB) as tf.Tensor2D);
    return tf.add(trainableLinear(h, v.proj as tf.Tensor2D), v.projB) as tf.Tensor2D;
  }

  dispose(): void {
    for (const f of this.fast) for (const t of f.tensors) t.dispose();
    this.fast = [];
    for (const v of this.vars) for (const t of [v.fc, v.fcB, v.proj, v.projB]) t.dispose();
  }
}
