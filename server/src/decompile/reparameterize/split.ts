// Split MLPs (method-pruning.md 2.2): `mlp-L` becomes one copy `mlp-L-<p>` per input path p, each an MLP applied to
// that single path (own LN scalar, no b_c). The paper trains the copies from scratch (fresh GPT-2 init, 500
// pre-training steps at batch 64). [quirk] Here every copy starts from the (possibly fine-tuned) unsplit MLP, at
// its linearisation around the data mean: copy p computes
//   y_p(x_p) = g(x_p + mu_-p + b_c) - (n-1)/n g(mu + b_c) + projB/n,     g(u) = gelu_new(s (u F) + fcB) P,
// with mu_q the mean activation of input path q, mu = sum_q mu_q, mu_-p = mu - mu_p. Then
// sum_p y_p = g(mu + b_c) + J (x - mu) + projB + O(|x_p - mu_p|^2), the unsplit MLP to first order; both constants
// fold into the copy's biases (fcB_p = fcB + s (mu_-p + b_c) F, projB_p). Pre-training (index.ts) then fine-tunes
// the copies at lr 1e-3, so split mode starts close to the faithful program instead of re-learning the MLP.
import type { MaskedState, MlpWeights } from '../prune/masked';
import type { PathGraph } from './graph';
import { geluNew, type FoldedModel } from './lln';

/**
 * The split graph's state carried over from the unsplit graph's (faithful) state: LN variances and constants of
 * q/k/v/lm_head by consumer id, each copy with its MLP's variance and weights (biases set by `meanFieldCopies`),
 * ablation constants zero (as at a stage transition, method-pruning.md 3.8).
 */
export function splitStateFrom(unsplit: PathGraph, state: MaskedState, split: PathGraph, d: number): MaskedState {
  const logVar = new Float32Array(split.consumers.length);
  const bc = new Float32Array(split.consumers.length * d);
  for (const c of split.consumers) {
    const from = unsplit.consumerIndex.get(c.kind === 'mlp' ? `mlp-${c.layer}` : c.id);
    if (from === undefined) throw new Error(`internal: no unsplit consumer for ${c.id}`);
    logVar[c.index] = state.logVar[from];
    if (c.kind !== 'mlp') bc.set(state.bc.subarray(from * d, (from + 1) * d), c.index * d);
  }
  const mlps = split.mlps.map((u): MlpWeights => {
    const w = state.mlps[unsplit.mlps.findIndex((x) => x.layer === u.layer)];
    return { fc: Float32Array.from(w.fc), fcB: Float32Array.from(w.fcB), proj: Float32Array.from(w.proj), projB: Float32Array.from(w.projB) };
  });
  return { logVar, oa: new Float32Array(split.paths.length * d), bc, mlps };
}

/**
 * Sets the biases of layer `layer`'s copies in `state` (split graph) to the mean-field linearisation above, given
 * the unsplit MLP (weights, LN variance, constant b_c) and the mean activation of every split path.
 */
export function meanFieldCopies(
  split: PathGraph,
  state: MaskedState,
  layer: number,
  mlp: MlpWeights,
  variance: number,
  bcMlp: ArrayLike<number>,
  means: Float64Array,
  folded: Pick<FoldedModel, 'd' | 'eps'>,
): void {
  const { d, eps } = folded;
  const h = 4 * d;
  const s = 1 / Math.sqrt(variance + eps);
  const units = split.mlps.map((u, i) => ({ u, i })).filter((x) => x.u.layer === layer);
  const n = units.length;
  const inputOf = (i: number): number => split.edges[split.mlps[i].edge!].source;
  const mu = new Float64Array(d);
  for (const { i } of units) for (let k = 0; k < d; k++) mu[k] += means[inputOf(i) * d + k];
  /** s (x F) for a d-vector x. */
  const pre = (x: Float64Array): Float64Array => {
    const out = new Float64Array(h);
    for (let r = 0; r < d; r++) {
      const xr = x[r] * s;
      if (xr === 0) continue;
      for (let c = 0; c < h; c++) out[c] += xr * mlp.fc[r * h + c];
    }
    return out;
  };
  // g(mu + b_c)
  const centre = Float64Array.from(mu, (m, k) => m + bcMlp[k]);
  const p0 = pre(centre);
  const g = new Float64Array(d);
  for (let c = 0; c < h; c++) {
    const a = geluNew(p0[c] + mlp.fcB[c]);
    for (let k = 0; k < d; k++) g[k] += a * mlp.proj[c * d + k];
  }
  for (const { i } of units) {
    const rest = Float64Array.from(centre, (m, k) => m - means[inputOf(i) * d + k]);
    const shift = pre(rest);
    const w = state.mlps[i];
    w.fc = Float32Array.from(mlp.fc);
    w.proj = Float32Array.from(mlp.proj);
    w.fcB = Float32Array.from(mlp.fcB, (b, c) => b + shift[c]);
    w.projB = Float32Array.from(mlp.projB, (b, k) => (b - (n - 1) * g[k]) / n);
  }
}
