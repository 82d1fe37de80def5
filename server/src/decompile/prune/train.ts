// Causal pruning (method-pruning.md 3): learned per-row mask samples with the straight-through window
// estimator (3.2), optimal-ablation constants (3.3), dangling-edge pruning of sampled and final masks (3.4), the
// faithfulness loss plus lambda * sum sigmoid(theta) (3.5), AdamW groups with the paper's learning rates (3.6).
// Stage 1 ties the masks of all path edges that share a consumer and a source component; stage 2 unties them.
import * as tf from '@tensorflow/tfjs';
import type { Task } from '../../tasks';
import { sequenceMatches } from '../../tasks';
import { CancelledError } from '../../util/errors';
import { Rng } from '../../util/rng';
import { pruneDangling, type PathGraph } from '../reparameterize/graph';
import type { FoldedModel } from '../reparameterize/lln';
import { copyMlpWeights } from './mlps';
import { MaskedModel, stopGrad, type Batch, type HeadScores, type MaskedState, type Objective } from './masked';

export interface Hooks {
  signal?: AbortSignal;
  onProgress?: (p: { stage: string; fraction: number; message?: string }) => void;
}

/** Lets signal handlers (Ctrl-C) and messages run between synchronous tfjs steps. */
export function yieldToEvents(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError();
}

/** Builds a batch (right-padded, positions 0..T-1) with the original model's targets. */
export function makeBatch(
  folded: FoldedModel,
  task: Task,
  objective: Objective,
  seqs: number[][],
  orig: ArrayLike<number>[] | null,
): Batch {
  const { d, V } = folded;
  const B = seqs.length;
  const T = Math.max(...seqs.map((s) => s.length));
  const tok = new Float32Array(B * T * d);
  const pos = new Float32Array(B * T * d);
  const weight = new Float32Array(B * T);
  const target = new Float32Array(orig ? B * T * V : 1);
  let nScored = 0;
  seqs.forEach((seq, b) => {
    for (let t = 0; t < T; t++) {
      const id = t < seq.length ? seq[t] : task.special.pad;
      tok.set(folded.wte.subarray(id * d, (id + 1) * d), (b * T + t) * d);
      pos.set(folded.wpe.subarray(t * d, (t + 1) * d), (b * T + t) * d);
    }
    for (const p of task.scoredPositions(seq)) {
      weight[b * T + p] = 1;
      nScored++;
    }
    if (!orig) return;
    const o = orig[b];
    for (let t = 0; t < seq.length; t++) {
      const base = (b * T + t) * V;
      if (objective === 'ce') {
        let max = -Infinity;
        for (let v = 0; v < V; v++) max = Math.max(max, o[t * V + v]);
        let z = 0;
        for (let v = 0; v < V; v++) z += Math.exp(o[t * V + v] - max);
        const lz = max + Math.log(z);
        for (let v = 0; v < V; v++) target[base + v] = o[t * V + v] - lz;
      } else {
        for (let v = 0; v < V; v++) target[base + v] = 1 / (1 + Math.exp(-o[t * V + v]));
      }
    }
  });
  const causal = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) causal[i * T + j] = -1e9;
  return {
    B,
    T,
    seqs,
    tok: tf.tensor3d(tok, [B, T, d]),
    pos: tf.tensor3d(pos, [B, T, d]),
    causal: tf.tensor2d(causal, [T, T]),
    weight: tf.tensor2d(weight, [B, T]),
    nScored,
    target: orig ? tf.tensor3d(target, [B, T, V]) : tf.zeros([1, 1, 1]),
  };
}

export function disposeBatch(b: Batch): void {
  for (const t of [b.tok, b.pos, b.causal, b.weight, b.target]) t.dispose();
}

/** A set of sequences with the original model's logits, used to measure match accuracy of masked models. */
export interface EvalSet {
  lengths: [number, number];
  seqs: number[][];
  orig: ArrayLike<number>[];
}

export interface PruneContext {
  graph: PathGraph;
  folded: FoldedModel;
  task: Task;
  objective: Objective;
  model: MaskedModel;
  train: Batch[];
  /**
   * Batches of lengths 0-150 when `train` is a short-sequence pool: a pruned run that misses the target (or holds it
   * by a small margin) re-fits its LN variances and constants there with its mask fixed (search.ts `calibrate`).
   */
  long?: Batch[];
  evalSets: EvalSet[];
  evalBatch: number;
  hooks: Hooks;
}

/** Which mask unit (theta entry) each edge uses; -1 = the edge is absent (pruned by an earlier stage). */
export interface Units {
  count: number;
  ofEdge: Int32Array;
}

export function groupUnits(graph: PathGraph): Units {
  return { count: graph.groups.length, ofEdge: Int32Array.from(graph.edges, (e) => e.group) };
}

export function edgeUnits(graph: PathGraph, keep: Float32Array): Units {
  const ofEdge = new Int32Array(graph.edges.length).fill(-1);
  let count = 0;
  keep.forEach((m, e) => {
    if (m > 0) ofEdge[e] = count++;
  });
  return { count, ofEdge };
}

/** Deterministic final mask: theta > 0, then dangling pruning. */
export function finalMask(graph: PathGraph, units: Units, theta: Float32Array): Float32Array {
  const m = new Float32Array(graph.edges.length);
  units.ofEdge.forEach((u, e) => {
    m[e] = u >= 0 && theta[u] > 0 ? 1 : 0;
  });
  pruneDangling(graph, m);
  return m;
}

export interface StageSettings {
  steps: number;
  /** Stop early once every theta has been decided (|theta| >= 1) for `patience` steps, after at least minSteps. */
  minSteps: number;
  patience: number;
  lambda: number;
  seed: number;
  /**
   * Hold the LN variances (default: learn them at lr 0.1). On when pruning trains on short sequences but the
   * variances had to be fitted on lengths 0-150: learning them on short inputs would undo that fit.
   */
  frozenLn?: boolean;
}

export interface StageResult {
  theta: Float32Array;
  mask: Float32Array;
  steps: number;
  loss: number;
}

/** One Adam step on the mask logits, the gradient clipped to norm 5 (method-pruning.md 3.6). Inside a tidy. */
export function stepTheta(opt: tf.Optimizer, theta: tf.Variable, grads: tf.NamedTensorMap): void {
  const gt = grads[theta.name];
  const norm = tf.norm(gt).dataSync()[0];
  opt.applyGradients([{ name: theta.name, tensor: norm > 5 ? tf.mul(gt, 5 / norm) : gt }]);
}

/**
 * method-pruning.md 3.7: a countdown that restarts whenever some theta is still undecided (|theta| < 1); a stage
 * stops once it runs out (after at least minSteps), or at its step cap. Checked every 25 steps.
 */
export class Countdown {
  private lastUndecided = 0;
  constructor(private readonly s: Pick<StageSettings, 'minSteps' | 'patience'>) {}
  /** Call after step `step` (0-based); true when the stage should stop. */
  done(step: number, theta: tf.Variable): boolean {
    if ((step + 1) % 25 !== 0) return false;
    if ((theta.dataSync() as Float32Array).some((t) => t > -1 && t < 1)) this.lastUndecided = step + 1;
    return step + 1 >= this.s.minSteps && step + 1 - this.lastUndecided >= this.s.patience;
  }
}

/** Trains one stage's mask logits (with the LN variances and constants) and returns the final mask. */
export async function trainStage(ctx: PruneContext, units: Units, theta0: Float32Array, s: StageSettings, label: string): Promise<StageResult> {
  const { graph, model } = ctx;
  const E = graph.edges.length;
  const U = units.count;
  // an earlier stage pruned everything: nothing to learn (and no zero-sized products for XNNPACK)
  if (U === 0) return { theta: new Float32Array(0), mask: new Float32Array(E), steps: 0, loss: NaN };
  const onehot = new Float32Array(U * E);
  units.ofEdge.forEach((u, e) => {
    if (u >= 0) onehot[u * E + e] = 1;
  });
  const onehotT = tf.tensor2d(onehot, [U, E]);
  const absent = Uint8Array.from(units.ofEdge, (u) => (u < 0 ? 1 : 0));
  const theta = tf.variable(tf.tensor1d(theta0), true);
  // AdamW with weight decay 0 is Adam; learning rates as in the paper's search
  const optTheta = tf.train.adam(0.1, 0.9, 0.995);
  const optLn = tf.train.adam(0.1);
  const optOa = tf.train.adam(0.002);
  const optBc = tf.train.adam(1e-4);
  const rng = new Rng(s.seed);
  let last = 0;
  let step = 0;
  const countdown = new Countdown(s);
  try {
    for (; step < s.steps; step++) {
      if (step % 5 === 0) await yieldToEvents();
      throwIfAborted(ctx.hooks.signal);
      const batch = ctx.train[step % ctx.train.length];
      const B = batch.B;
      const thetaNow = theta.dataSync() as Float32Array;
      const sample = sampleMasks(graph, units, thetaNow, B, rng);
      const loss = tf.tidy(() => {
        const mConst = tf.tensor2d(sample.m, [B, E]);
        const G = tf.tensor2d(sample.g, [B, E]);
        const gate = tf.tensor2d(sample.gate, [B, E]);
        const { value, grads } = tf.variableGrads(() => {
          const delta = tf.reshape(tf.sub(theta, stopGrad(theta)), [1, U]);
          const M = tf.add(mConst, tf.mul(tf.matMul(delta, onehotT), G)) as tf.Tensor2D;
          const logits = model.forward(batch, M, gate, absent);
          return tf.add(model.loss(batch, logits, ctx.objective), tf.mul(s.lambda, tf.sum(tf.sigmoid(theta)))) as tf.Scalar;
        }, [theta, ...(s.frozenLn ? [] : [model.logVar]), model.oa, model.bc]);
        stepTheta(optTheta, theta, grads);
        if (!s.frozenLn) optLn.applyGradients([{ name: model.logVar.name, tensor: grads[model.logVar.name] }]);
        optOa.applyGradients([{ name: model.oa.name, tensor: grads[model.oa.name] }]);
        optBc.applyGradients([{ name: model.bc.name, tensor: grads[model.bc.name] }]);
        return value.dataSync()[0];
      });
      last = loss;
      if (step % 10 === 0) ctx.hooks.onProgress?.({ stage: label, fraction: step / s.steps, message: `loss ${loss.toExponential(2)}` });
      if (countdown.done(step, theta)) {
        step++;
        break;
      }
    }
    const th = Float32Array.from(theta.dataSync());
    return { theta: th, mask: finalMask(graph, units, th), steps: step, loss: last };
  } finally {
    theta.dispose();
    onehotT.dispose();
    for (const o of [optTheta, optLn, optOa, optBc]) o.dispose();
  }
}

export interface FaithfulOptions {
  /** Learn the LN log-variances (Adam at `lnLr`, default 0.1). Default true. */
  ln?: boolean;
  lnLr?: number;
  /** Learning rate of the consumer constants b_c (default 1e-4, the paper's main-loop rate). */
  bcLr?: number;
  /** Fine-tune the MLP weights from their current values (Adam at `mlpLr`, default 1e-3 as the paper's MLP copies). */
  mlp?: boolean;
  mlpLr?: number;
  /** Learn the ablation constants of the edges the mask turns off (Adam lr 0.002, as in pruning). */
  oa?: boolean;
  /** A fixed edge mask (default every edge on): pruned edges read their ablation constants, and are not computed. */
  mask?: Float32Array;
  /** Stage-3 head scores of a pruned run (selectors.ts fixedScores), with `mask`. */
  headScores?: HeadScores;
  /** The batches to train on (default ctx.train). */
  pool?: Batch[];
}

export interface FaithfulResult {
  steps: number;
  /** Mean loss over the first and the last pass through the training pool (the same batches). */
  first: number;
  last: number;
}

/**
 * Trains with a fixed mask (default every edge on): the LN variances and constants (the faithful program with
 * learned scales; a pruned run's calibration) and, when asked, the ablation constants and the MLP weights
 * (method-pruning.md 3.6 learning rates). The MLPs are trained through their slow path (weight gradients) only
 * here; they are frozen again on return, whatever happens.
 */
export async function trainFaithful(ctx: PruneContext, steps: number, label: string, opts: FaithfulOptions = {}): Promise<FaithfulResult> {
  const { graph, model } = ctx;
  const E = graph.edges.length;
  const learnLn = opts.ln !== false;
  const optLn = tf.train.adam(opts.lnLr ?? 0.1);
  const optBc = tf.train.adam(opts.bcLr ?? 1e-4);
  const optMlp = tf.train.adam(opts.mlpLr ?? 1e-3);
  const optOa = tf.train.adam(0.002);
  const mlpVars = opts.mlp ? model.mlps.variables() : [];
  const vars: tf.Variable[] = [...(learnLn ? [model.logVar] : []), model.bc, ...(opts.oa ? [model.oa] : []), ...mlpVars];
  const pool = opts.pool ?? ctx.train;
  const mask = opts.mask ?? new Float32Array(E).fill(1);
  const absent = Uint8Array.from(mask, (m) => (m > 0 ? 0 : 1));
  const off = Float32Array.from(mask, (m) => (m > 0 ? 0 : 1));
  const pass = Math.max(1, Math.min(pool.length, Math.floor(steps / 2)));
  const losses: number[] = [];
  model.mlps.setTraining(mlpVars.length > 0);
  try {
    for (let step = 0; step < steps; step++) {
      if (step % 5 === 0) await yieldToEvents();
      throwIfAborted(ctx.hooks.signal);
      const batch = pool[step % pool.length];
      const loss = tf.tidy(() => {
        const M = tf.tile(tf.tensor2d(mask, [1, E]), [batch.B, 1]) as tf.Tensor2D;
        const gate = opts.oa ? (tf.tile(tf.tensor2d(off, [1, E]), [batch.B, 1]) as tf.Tensor2D) : null;
        const { value, grads } = tf.variableGrads(() => model.loss(batch, model.forward(batch, M, gate, absent, opts.headScores), ctx.objective), vars);
        if (learnLn) optLn.applyGradients([{ name: model.logVar.name, tensor: grads[model.logVar.name] }]);
        optBc.applyGradients([{ name: model.bc.name, tensor: grads[model.bc.name] }]);
        if (opts.oa) optOa.applyGradients([{ name: model.oa.name, tensor: grads[model.oa.name] }]);
        if (mlpVars.length > 0) optMlp.applyGradients(mlpVars.map((v) => ({ name: v.name, tensor: grads[v.name] })));
        return value.dataSync()[0];
      });
      losses.push(loss);
      if (step % 10 === 0) ctx.hooks.onProgress?.({ stage: label, fraction: step / steps, message: `loss ${loss.toExponential(2)}` });
    }
  } finally {
    model.mlps.setTraining(false);
    optLn.dispose();
    optBc.dispose();
    optMlp.dispose();
    optOa.dispose();
  }
  const mean = (xs: number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  // the same batches at the start and at the end (the pool cycles), so the two means are comparable
  let start = Math.floor((steps - pass) / pool.length) * pool.length;
  if (start < pass) start = Math.max(0, steps - pass);
  return { steps, first: mean(losses.slice(0, pass)), last: mean(losses.slice(start, start + pass)) };
}

interface MaskSample {
  m: Float32Array;
  g: Float32Array;
  gate: Float32Array;
}

/**
 * The per-unit part of the sampler, B x U (row-major): mu = clamp((p-u)/w + 1/2) with p = sigmoid(theta) and
 * w = p(1-p); `frac[u]` counts the rows where unit u is strictly fractional (the rows its theta learns from).
 */
export function windowSample(theta: Float32Array, B: number, rng: Rng): { mu: Float32Array; frac: Int32Array; w: Float32Array } {
  const U = theta.length;
  const mu = new Float32Array(B * U);
  const frac = new Int32Array(U);
  const w = new Float32Array(U);
  for (let u = 0; u < U; u++) {
    const p = 1 / (1 + Math.exp(-theta[u]));
    w[u] = p * (1 - p);
  }
  for (let b = 0; b < B; b++) {
    for (let u = 0; u < U; u++) {
      const p = 1 / (1 + Math.exp(-theta[u]));
      const r = rng.next();
      const v = w[u] > 0 ? Math.min(1, Math.max(0, (p - r) / w[u] + 0.5)) : p > r ? 1 : 0;
      mu[b * U + u] = v;
      if (v > 1e-3 && v < 1 - 1e-3) frac[u]++;
    }
  }
  return { mu, frac, w };
}

/**
 * One mask row per batch row (method-pruning.md 3.2): p = sigmoid(theta), w = p(1-p), m = clamp((p-u)/w + 1/2).
 * The forward value is m; theta's gradient is w inside the fractional window, scaled by B / (rows in the window).
 */
export function sampleMasks(graph: PathGraph, units: Units, theta: Float32Array, B: number, rng: Rng): MaskSample {
  const E = graph.edges.length;
  const m = new Float32Array(B * E);
  const g = new Float32Array(B * E);
  const gate = new Float32Array(B * E);
  const { mu, frac, w } = windowSample(theta, B, rng);
  const U = units.count;
  for (let b = 0; b < B; b++) {
    for (let e = 0; e < E; e++) {
      const u = units.ofEdge[e];
      m[b * E + e] = u >= 0 ? mu[b * U + u] : 0;
    }
    pruneDangling(graph, m, b * E);
  }
  for (let b = 0; b < B; b++) {
    for (let e = 0; e < E; e++) {
      const k = b * E + e;
      const u = units.ofEdge[e];
      if (m[k] < 1e-3) gate[k] = 1;
      if (u < 0 || frac[u] === 0) continue;
      const v = m[k];
      if (v > 1e-3 && v < 1 - 1e-3) g[k] = (w[u] * B) / frac[u];
    }
  }
  return { m, g, gate };
}

export interface MatchResult {
  match: number;
  bins: { lengths: [number, number]; match: number; samples: number }[];
  kl: number;
}

/** Match accuracy (and mean faithfulness loss) of the masked model with a fixed mask on the eval sets. */
export async function evaluate(ctx: PruneContext, mask: Float32Array, headScores?: HeadScores): Promise<MatchResult> {
  const { graph, folded, task } = ctx;
  const E = graph.edges.length;
  const V = folded.V;
  let total = 0;
  let agree = 0;
  let lossSum = 0;
  let lossN = 0;
  const bins: MatchResult['bins'] = [];
  const absent = Uint8Array.from(mask, (m) => (m > 0 ? 0 : 1));
  for (const set of ctx.evalSets) {
    let ok = 0;
    for (let i = 0; i < set.seqs.length; i += ctx.evalBatch) {
      await yieldToEvents();
      throwIfAborted(ctx.hooks.signal);
      const seqs = set.seqs.slice(i, i + ctx.evalBatch);
      const orig = set.orig.slice(i, i + ctx.evalBatch);
      const batch = makeBatch(folded, task, ctx.objective, seqs, orig);
      try {
        const { logits, loss } = tf.tidy(() => {
          const M = tf.tile(tf.tensor2d(mask, [1, E]), [batch.B, 1]) as tf.Tensor2D;
          const out = ctx.model.forward(batch, M, null, absent, headScores);
          return { logits: out.dataSync() as Float32Array, loss: ctx.model.loss(batch, out, ctx.objective).dataSync()[0] };
        });
        lossSum += loss * batch.nScored;
        lossN += batch.nScored;
        seqs.forEach((seq, b) => {
          const row = logits.subarray(b * batch.T * V, (b * batch.T + seq.length) * V);
          if (sequenceMatches(task, seq, row, orig[b] as Float32Array)) ok++;
        });
      } finally {
        disposeBatch(batch);
      }
    }
    bins.push({ lengths: set.lengths, match: set.seqs.length ? ok / set.seqs.length : 1, samples: set.seqs.length });
    agree += ok;
    total += set.seqs.length;
  }
  return { match: total ? agree / total : 1, bins, kl: lossN ? lossSum / lossN : 0 };
}

export function snapshot(model: MaskedModel): MaskedState {
  const s = model.state();
  return { logVar: Float32Array.from(s.logVar), oa: Float32Array.from(s.oa), bc: Float32Array.from(s.bc), mlps: s.mlps.map(copyMlpWeights) };
}
