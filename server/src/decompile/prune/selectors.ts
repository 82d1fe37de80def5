// Pruning stage 3 (method-pruning.md 2.3, 3.8): query-key product masks. For every live head the prunable units are
// the products (q path x k path) of its kept q and k edges, plus one key-only term per kept k path with a learned
// query-bias vector beta (d_head) that stands for everything constant on the query side:
//   S = sum_kept m (sq act_qp Wq~)(sk act_kp Wk~)^T + sum_kept m beta (sk act_kp Wk~)^T
// then / sqrt(d_head) and the causal mask; a head with no kept unit attends uniformly over its prefix. No constants
// inside the products: (q + cq)(k + ck)^T = q k^T + cq k^T + (q + cq) ck^T, and the last part depends on the query
// position only, so it cancels in the softmax; cq k^T is the key-only term. V, MLP and lm_head edges stay fixed at
// the stage-2 mask (their ablation constants frozen), and a pruned unit contributes exactly 0 (no ablation).
//
// [fix] beta starts at the exact query constant of the stage-2 network (b_q and the ablated q inputs through the
// LN'd W_Q, plus the Q bias) instead of 0, so stage 3 with every unit on *is* the stage-2 network.
//
// Everything crossing a run boundary (units, beta, theta, keep) is plain typed arrays (worker-safe).
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../util/rng';
import { pruneDangling, type PathGraph } from '../reparameterize/graph';
import { vecMat, type FoldedModel } from '../reparameterize/lln';
import { stopGrad, type HeadScores, type MaskedState } from './masked';
import { Countdown, stepTheta, throwIfAborted, windowSample, yieldToEvents, type PruneContext, type StageSettings } from './train';
import { bmmNT } from '../../model/forward';

/** Stage-3 units: per unit the q edge (-1 for a key-only term) and the k edge; the head is the edges' consumer's. */
export interface SelectorUnits {
  qEdge: Int32Array;
  kEdge: Int32Array;
}

/** Learned stage-3 state, as plain arrays (one entry per unit; beta is units x d_head, zero rows for products). */
export interface Stage3Data extends SelectorUnits {
  beta: Float32Array;
  theta: Float32Array;
  /** Final unit mask (1 = kept), after the unused-path cleanup. */
  keep: Float32Array;
}

/**
 * The units of the heads that live under an edge mask (a kept v edge), head by head in (layer, head) order: the
 * products q-major (as the emitted program lists them), then one key-only term per kept k edge.
 */
export function selectorUnits(graph: PathGraph, mask: Float32Array): SelectorUnits {
  const q: number[] = [];
  const k: number[] = [];
  for (let l = 0; l < graph.nLayer; l++) {
    for (let h = 0; h < graph.nHead; h++) {
      const kept = (id: string): number[] => graph.consumers[graph.consumerIndex.get(`${id}-${l}-${h}`)!].edges.filter((e) => mask[e] > 0);
      if (kept('v').length === 0) continue;
      const qs = kept('q');
      const ks = kept('k');
      for (const qe of qs) {
        for (const ke of ks) {
          q.push(qe);
          k.push(ke);
        }
      }
      for (const ke of ks) {
        q.push(-1);
        k.push(ke);
      }
    }
  }
  return { qEdge: Int32Array.from(q), kEdge: Int32Array.from(k) };
}

/** `layer-head` of a unit (through its k edge's consumer). */
function headKey(graph: PathGraph, units: SelectorUnits, u: number): string {
  const c = graph.consumers[graph.edges[units.kEdge[u]].consumer];
  return `${c.layer}-${c.head}`;
}

/**
 * Everything constant in head (layer, head)'s query under the edge mask (the stage-2 network): its consumer constant
 * b_q plus the ablation constants of its pruned q edges, through the LN'd query map, plus the Q bias (LN beta W_Q + b_Q).
 */
export function queryConstant(graph: PathGraph, folded: FoldedModel, state: MaskedState, mask: Float32Array, layer: number, head: number): Float64Array {
  const { d, dh, eps } = folded;
  const qi = graph.consumerIndex.get(`q-${layer}-${head}`)!;
  const u = Float64Array.from(state.bc.subarray(qi * d, (qi + 1) * d));
  for (const e of graph.consumers[qi].edges) {
    if (mask[e] > 0) continue;
    const src = graph.edges[e].source;
    for (let i = 0; i < d; i++) u[i] += state.oa[src * d + i];
  }
  const H = folded.layers[layer].heads[head];
  const scale = 1 / Math.sqrt(Math.exp(state.logVar[qi]) + eps);
  const q = vecMat(u, H.q, d, dh);
  const out = new Float64Array(dh);
  for (let i = 0; i < dh; i++) out[i] = q[i] * scale + H.cQ[i];
  return out;
}

/** beta for every key-only unit = its head's exact query constant (see [fix] above); zero rows for products. */
export function initialBeta(graph: PathGraph, folded: FoldedModel, state: MaskedState, mask: Float32Array, units: SelectorUnits): Float32Array {
  const dh = folded.dh;
  const beta = new Float32Array(units.kEdge.length * dh);
  const cache = new Map<string, Float64Array>();
  units.kEdge.forEach((ke, u) => {
    if (units.qEdge[u] >= 0) return;
    const c = graph.consumers[graph.edges[ke].consumer];
    const key = `${c.layer}-${c.head}`;
    let qc = cache.get(key);
    if (!qc) {
      qc = queryConstant(graph, folded, state, mask, c.layer, c.head!);
      cache.set(key, qc);
    }
    beta.set(qc, u * dh);
  });
  return beta;
}

/**
 * Head scores from unit masks M (R x U with R = 1 or the batch size; differentiable) and beta (U x d_head). Per head:
 * Kmix_i = sum_j m_ij K_j for each q path i, the key-only column sum_j m_j (K_j . beta_j), and one batched matmul
 * [Q_1 .. Q_n, 1] [Kmix_1 .. Kmix_n, kterm]^T: T x T work once per head, whatever the number of products.
 * `betaGate` (R x U, constant): beta learns only from rows where its term is fully on (method-pruning.md 3.3).
 * `active` restricts to the units that are used (a fixed mask's kept units: the rest may read paths not computed).
 */
function unitScores(graph: PathGraph, units: SelectorUnits, M: tf.Tensor2D, beta: tf.Tensor2D, betaGate: tf.Tensor2D | null, active: (u: number) => boolean): HeadScores {
  const byHead = new Map<string, number[]>();
  for (let u = 0; u < units.kEdge.length; u++) {
    if (!active(u)) continue;
    const key = headKey(graph, units, u);
    const list = byHead.get(key);
    if (list) list.push(u);
    else byHead.set(key, [u]);
  }
  return (layer, head, proj) => {
    const { B, T } = proj;
    const list = byHead.get(`${layer}-${head}`);
    if (!list) return tf.zeros([B, T, T]);
    const R = M.shape[0];
    const dh = beta.shape[1];
    const col = (x: tf.Tensor2D, u: number): tf.Tensor2D => tf.slice(x, [0, u], [R, 1]);
    const row = (x: tf.Tensor2D, u: number): tf.Tensor2D => tf.slice(x, [u, 0], [1, dh]);
    const Ks = new Map<number, tf.Tensor3D>();
    const K = (e: number): tf.Tensor3D => {
      let t = Ks.get(e);
      if (!t) {
        t = proj.k(graph.edges[e].source);
        Ks.set(e, t);
      }
      return t;
    };
    const mixes = new Map<number, tf.Tensor3D>();
    let kterm: tf.Tensor3D | undefined;
    const betaConst = stopGrad(beta) as tf.Tensor2D;
    const betaDelta = tf.sub(beta, betaConst) as tf.Tensor2D;
    for (const u of list) {
      const m = col(M, u);
      const qe = units.qEdge[u];
      if (qe >= 0) {
        const term = tf.mul(tf.reshape(m, [R, 1, 1]), K(units.kEdge[u])) as tf.Tensor3D;
        const prev = mixes.get(qe);
        mixes.set(qe, prev ? (tf.add(prev, term) as tf.Tensor3D) : term);
      } else {
        // m beta, with beta's gradient only through the gated rows
        let coef: tf.Tensor = tf.matMul(m, row(betaConst, u));
        coef = tf.add(coef, tf.matMul(betaGate ? tf.mul(m, col(betaGate, u)) : m, row(betaDelta, u)));
        const term = tf.sum(tf.mul(K(units.kEdge[u]), tf.reshape(coef, [R, 1, dh])), 2, true) as tf.Tensor3D;
        kterm = kterm ? (tf.add(kterm, term) as tf.Tensor3D) : term;
      }
    }
    // (the K_j are B x T x d_head, so mixes and kterm are batch-sized even when the masks are one shared row)
    const left: tf.Tensor3D[] = [];
    const right: tf.Tensor3D[] = [];
    for (const [qe, mix] of mixes) {
      left.push(proj.q(graph.edges[qe].source));
      right.push(mix);
    }
    if (kterm) {
      left.push(tf.ones([B, T, 1]));
      right.push(kterm);
    }
    if (left.length === 0) return tf.zeros([B, T, T]);
    const Q = left.length === 1 ? left[0] : (tf.concat(left, 2) as tf.Tensor3D);
    const Kc = right.length === 1 ? right[0] : (tf.concat(right, 2) as tf.Tensor3D);
    return bmmNT(Q, Kc);
  };
}

/** Head scores for a fixed unit mask (evaluation, tests). Call inside tf.tidy: it creates tensors per forward. */
export function fixedScores(graph: PathGraph, folded: FoldedModel, data: SelectorUnits & { beta: Float32Array; keep: Float32Array }): HeadScores {
  const U = data.kEdge.length;
  return (layer, head, proj) => {
    if (U === 0) return tf.zeros([proj.B, proj.T, proj.T]);
    const M = tf.tensor2d(data.keep, [1, U]);
    const beta = tf.tensor2d(data.beta, [U, folded.dh]);
    return unitScores(graph, data, M, beta, null, (u) => data.keep[u] > 0)(layer, head, proj);
  };
}

/**
 * After stage 3 (d-rasp.md 2.6, method-pruning.md 2.3): q/k edges used by no kept unit leave the edge mask, then
 * dangling pruning removes what fed only them (to a fixpoint; the original makes one pass), and units whose head or
 * edges died go too. Returns the edge mask and the unit mask.
 */
export function cleanupStage3(graph: PathGraph, mask2: Float32Array, units: SelectorUnits, keep0: Float32Array): { mask: Float32Array; keep: Float32Array } {
  const mask = Float32Array.from(mask2);
  const keep = Float32Array.from(keep0);
  for (let iter = 0; iter < 8; iter++) {
    const used = new Uint8Array(graph.edges.length);
    keep.forEach((k, u) => {
      if (k <= 0) return;
      used[units.kEdge[u]] = 1;
      if (units.qEdge[u] >= 0) used[units.qEdge[u]] = 1;
    });
    graph.edges.forEach((e, i) => {
      const kind = graph.consumers[e.consumer].kind;
      if ((kind === 'q' || kind === 'k') && !used[i]) mask[i] = 0;
    });
    pruneDangling(graph, mask);
    let changed = false;
    keep.forEach((k, u) => {
      if (k > 0 && (mask[units.kEdge[u]] <= 0 || (units.qEdge[u] >= 0 && mask[units.qEdge[u]] <= 0))) {
        keep[u] = 0;
        changed = true;
      }
    });
    if (!changed) break;
  }
  return { mask, keep };
}

/**
 * Edge count of a final config (method-pruning.md 3.9, the paper's get_num_element): kept qk products + key-only
 * terms + v paths + MLP inputs + lm_head inputs. Without stage 3 (keep = null) every kept q/k edge counts as one.
 */
export function configEdges(graph: PathGraph, mask: Float32Array, keep: Float32Array | null): number {
  let n = 0;
  graph.edges.forEach((e, i) => {
    if (mask[i] <= 0) return;
    const kind = graph.consumers[e.consumer].kind;
    if (keep && (kind === 'q' || kind === 'k')) return;
    n++;
  });
  if (keep) for (const k of keep) if (k > 0) n++;
  return n;
}

export interface Stage3Settings extends StageSettings {
  /** Steps of pre-training (b_c and beta, every unit on) before the mask loop. */
  preSteps: number;
  /**
   * Learn the LN variances in the mask loop (default false). The paper does (lr 0.1), but here pruning trains on
   * short sequences, and re-fitting every scale there moved unique_copy's long-length match (101-150: 0.75 -> 0.54).
   */
  ln?: boolean;
}

export interface Stage3Result extends Stage3Data {
  mask: Float32Array;
  steps: number;
  preSteps: number;
  loss: number;
}

/**
 * Stage 3 from the stage-2 edge mask and the model's current state. Pre-training (method-pruning.md 3.8): b_c and beta
 * at lr 0.002 with every unit on, LN frozen. Then the mask loop as in stages 1-2 (per-row samples, straight-through
 * window estimator, lambda * sum sigmoid(theta), theta init 8, the countdown); b_c at 1e-4, beta at 0.002 (gated to
 * fully-on rows), LN frozen unless `ln` (see Stage3Settings).
 */
export async function trainSelectors(ctx: PruneContext, mask2: Float32Array, s: Stage3Settings, label: string): Promise<Stage3Result> {
  const { graph, folded, model } = ctx;
  const units = selectorUnits(graph, mask2);
  const U = units.kEdge.length;
  const dh = folded.dh;
  const beta0 = initialBeta(graph, folded, model.state(), mask2, units);
  const done = (theta: Float32Array, beta: Float32Array, steps: number, preSteps: number, loss: number): Stage3Result => {
    const { mask, keep } = cleanupStage3(graph, mask2, units, Float32Array.from(theta, (t) => (t > 0 ? 1 : 0)));
    return { ...units, beta, theta, keep, mask, steps, preSteps, loss };
  };
  // no live head reads anything through q/k: nothing to learn (and no zero-sized products for XNNPACK)
  if (U === 0) return done(new Float32Array(0), beta0, 0, 0, NaN);
  const E = graph.edges.length;
  const absent = Uint8Array.from(mask2, (m) => (m > 0 ? 0 : 1));
  const edgeRow = tf.tensor2d(mask2, [1, E]);
  const theta = tf.variable(tf.tensor1d(new Float32Array(U).fill(8)), true);
  const beta = tf.variable(tf.tensor2d(beta0, [U, dh]), true);
  const allOn = tf.ones([1, U]) as tf.Tensor2D;
  const optPreBc = tf.train.adam(0.002);
  const optPreBeta = tf.train.adam(0.002);
  const optTheta = tf.train.adam(0.1, 0.9, 0.995);
  const optLn = tf.train.adam(0.1);
  const optBeta = tf.train.adam(0.002);
  const optBc = tf.train.adam(1e-4);
  const apply = (opt: tf.Optimizer, v: tf.Variable, grads: Record<string, tf.Tensor>): void => {
    const g = grads[v.name];
    if (g) opt.applyGradients([{ name: v.name, tensor: g }]);
  };
  let last = NaN;
  let step = 0;
  let pre = 0;
  try {
    for (; pre < s.preSteps; pre++) {
      if (pre % 5 === 0) await yieldToEvents();
      throwIfAborted(ctx.hooks.signal);
      const batch = ctx.train[pre % ctx.train.length];
      last = tf.tidy(() => {
        const M = tf.tile(edgeRow, [batch.B, 1]) as tf.Tensor2D;
        const { value, grads } = tf.variableGrads(
          () => model.loss(batch, model.forward(batch, M, null, absent, unitScores(graph, units, allOn, beta, null, () => true)), ctx.objective),
          [model.bc, beta],
        );
        apply(optPreBc, model.bc, grads);
        apply(optPreBeta, beta, grads);
        return value.dataSync()[0];
      });
      if (pre % 10 === 0) ctx.hooks.onProgress?.({ stage: `${label} (pre-training)`, fraction: pre / Math.max(1, s.preSteps), message: `loss ${last.toExponential(2)}` });
    }
    const rng = new Rng(s.seed);
    const countdown = new Countdown(s);
    for (; step < s.steps; step++) {
      if (step % 5 === 0) await yieldToEvents();
      throwIfAborted(ctx.hooks.signal);
      const batch = ctx.train[step % ctx.train.length];
      const B = batch.B;
      const { mu, frac, w } = windowSample(theta.dataSync() as Float32Array, B, rng);
      const g = new Float32Array(B * U);
      const gate = new Float32Array(B * U);
      for (let b = 0; b < B; b++) {
        for (let u = 0; u < U; u++) {
          const v = mu[b * U + u];
          if (v > 0.999) gate[b * U + u] = 1;
          if (frac[u] > 0 && v > 1e-3 && v < 1 - 1e-3) g[b * U + u] = (w[u] * B) / frac[u];
        }
      }
      last = tf.tidy(() => {
        const mConst = tf.tensor2d(mu, [B, U]);
        const G = tf.tensor2d(g, [B, U]);
        const Gate = tf.tensor2d(gate, [B, U]);
        const Me = tf.tile(edgeRow, [B, 1]) as tf.Tensor2D;
        const { value, grads } = tf.variableGrads(() => {
          const delta = tf.reshape(tf.sub(theta, stopGrad(theta)), [1, U]);
          const M = tf.add(mConst, tf.mul(delta, G)) as tf.Tensor2D;
          const logits = model.forward(batch, Me, null, absent, unitScores(graph, units, M, beta, Gate, () => true));
          return tf.add(model.loss(batch, logits, ctx.objective), tf.mul(s.lambda, tf.sum(tf.sigmoid(theta)))) as tf.Scalar;
        }, [theta, ...(s.ln === true ? [model.logVar] : []), beta, model.bc]);
        stepTheta(optTheta, theta, grads);
        if (s.ln === true) apply(optLn, model.logVar, grads);
        apply(optBeta, beta, grads);
        apply(optBc, model.bc, grads);
        return value.dataSync()[0];
      });
      if (step % 10 === 0) ctx.hooks.onProgress?.({ stage: label, fraction: step / s.steps, message: `loss ${last.toExponential(2)}` });
      if (countdown.done(step, theta)) {
        step++;
        break;
      }
    }
    return done(Float32Array.from(theta.dataSync()), Float32Array.from(beta.dataSync()), step, pre, last);
  } finally {
    for (const t of [theta, beta, edgeRow, allOn]) t.dispose();
    for (const o of [optPreBc, optPreBeta, optTheta, optLn, optBeta, optBc]) o.dispose();
  }
}
