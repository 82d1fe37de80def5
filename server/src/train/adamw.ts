// AdamW as torch implements it (decoupled weight decay applied to the parameter before the Adam step), with
// global-norm gradient clipping and a linear decay of the learning rate to 0 without warmup (the HF Trainer's
// defaults the paper used: betas (0.9, 0.999), eps 1e-8, weight decay 0.01, max grad norm 1.0).
import * as tf from '@tensorflow/tfjs';

export interface AdamWOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  maxGradNorm: number;
}

export const PAPER_ADAMW: Omit<AdamWOptions, 'lr'> = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1.0 };

export class AdamW {
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];
  private t = 0;

  constructor(
    private readonly params: { v: tf.Variable; decay: boolean }[],
    private readonly options: AdamWOptions,
  ) {
    this.m = params.map(({ v }) => tf.variable(tf.zerosLike(v), false));
    this.v = params.map(({ v }) => tf.variable(tf.zerosLike(v), false));
  }

  /** One update with learning rate `lr`; `grads[i]` belongs to params[i]. Returns the gradient norm before clipping. */
  step(grads: tf.Tensor[], lr: number): number {
    this.t++;
    const { beta1, beta2, eps, weightDecay, maxGradNorm } = this.options;
    const normT = tf.tidy(() => tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))));
    const norm = normT.dataSync()[0];
    normT.dispose();
    // torch's clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1.
    const clip = Math.min(1, maxGradNorm / (norm + 1e-6));
    const bc1 = 1 - beta1 ** this.t;
    const bc2 = 1 - beta2 ** this.t;
    tf.tidy(() => {
      this.params.forEach(({ v: p, decay }, i) => {
        const g = clip < 1 ? tf.mul(grads[i], clip) : grads[i];
        const m = tf.add(tf.mul(this.m[i], beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(this.v[i], beta2), tf.mul(tf.square(g), 1 - beta2));
        this.m[i].assign(m);
        this.v[i].assign(v);
        const decayed = decay && weightDecay > 0 ? tf.mul(p, 1 - lr * weightDecay) : p;
        const update = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), eps));
        p.assign(tf.sub(decayed, tf.mul(update, lr)));
      });
    });
    return norm;
  }

  dispose(): void {
    for (const x of [...this.m, ...this.v]) x.dispose();
  }
}

/** Linear decay from `lr` at step 0 to 0 at `total` steps. */
export function linearLr(lr: number, step: number, total: number): number {
  return lr * Math.max(0, 1 - step / total);
}
