// Re-parameterization: the path graph, folded LLN-A maps and the exact initial state of the masked model.
import type { MaskedState, MlpWeights } from '../prune/masked';
import type { PathGraph } from './graph';
import { vecMat, type FoldedModel } from './lln';

export { buildPathGraph, mlpUnitsOf, pruneDangling, type GraphOptions, type MlpUnit, type PathGraph, type PathVar, type Consumer, type Edge } from './graph';
export { foldModel, meanLnVariances, originalForward, type FoldedModel } from './lln';

/** Index of a consumer's layer norm among the original sites (ln_1/ln_2 per layer, then ln_f). */
export function lnSite(graph: PathGraph, consumer: number): number {
  const c = graph.consumers[consumer];
  if (c.kind === 'lm_head') return 2 * graph.nLayer;
  return c.kind === 'mlp' ? 2 * c.layer + 1 : 2 * c.layer;
}

/**
 * The state under which the masked model with every edge on is exactly the LLN-A model: log-variances from the
 * original model's mean variances, ablation constants 0, and each consumer's constant b_c equal to everything
 * constant in its input (c_proj biases and the value-side constants carried through each earlier head).
 */
export function initialState(graph: PathGraph, folded: FoldedModel, variances: number[]): MaskedState {
  const { d, dh } = folded;
  const logVar = Float32Array.from(graph.consumers, (_, i) => Math.log(Math.max(variances[lnSite(graph, i)], 1e-12)));
  const bc = new Float32Array(graph.consumers.length * d);
  let c = new Float32Array(d);
  const set = (id: string, v: Float32Array): void => bc.set(v, graph.consumerIndex.get(id)! * d);
  for (let l = 0; l < folded.nLayer; l++) {
    const L = folded.layers[l];
    const next = Float32Array.from(c);
    for (let h = 0; h < folded.nHead; h++) {
      set(`q-${l}-${h}`, c);
      set(`k-${l}-${h}`, c);
      const H = L.heads[h];
      const scale = 1 / Math.sqrt(variances[2 * l] + folded.eps);
      const v = vecMat(c, H.v, d, dh);
      for (let i = 0; i < dh; i++) v[i] = v[i] * scale + H.cV[i];
      const o = vecMat(v, H.o, dh, d);
      for (let i = 0; i < d; i++) next[i] += o[i];
    }
    for (let i = 0; i < d; i++) next[i] += L.attnBias[i];
    c = next;
    // split copies have no b_c (each reads one path); splitMlpState folds the constant into their biases
    if (!graph.splitMlps) set(`mlp-${l}`, c);
  }
  set('lm_head', c);
  return { logVar, oa: new Float32Array(graph.paths.length * d), bc, mlps: graph.mlps.map((u) => originalMlp(folded, u.layer)) };
}

/** The original MLP of a layer as learnable weights (F = C diag(gamma) W_fc is centred by construction). */
export function originalMlp(folded: FoldedModel, layer: number): MlpWeights {
  const L = folded.layers[layer];
  return { fc: Float32Array.from(L.fc), fcB: Float32Array.from(L.fcB), proj: Float32Array.from(L.proj), projB: Float32Array.from(L.projB) };
}
