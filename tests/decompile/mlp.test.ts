// MLP weights as learnable state (prune/mlps.ts): the trainable path computes what the frozen fast path computes,
// its weight gradients are the true ones, state round-trips (and structured-clones, for worker threads), and split
// graphs have one copy per MLP input path with their own dangling rules.
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../server/src/model/backend';
import { randomWeights } from '../../server/src/model/weights';
import type { Gpt2Config } from '../../server/src/model/types';
import { buildPathGraph, foldModel, initialState, originalForward, pruneDangling } from '../../server/src/decompile/reparameterize';
import { geluNew } from '../../server/src/decompile/reparameterize/lln';
import { meanFieldCopies, splitStateFrom } from '../../server/src/decompile/reparameterize/split';
import { MaskedModel, type MaskedState, type MlpWeights } from '../../server/src/decompile/prune/masked';
import { trainableLinear } from '../../server/src/decompile/prune/linear';
import { gelu } from '../../server/src/decompile/prune/mlps';
import { disposeBatch, evaluate, makeBatch, snapshot, trainFaithful, type PruneContext } from '../../server/src/decompile/prune/train';
import { emitProgram } from '../../server/src/decompile/emit/program';
import { runBatch } from '../../server/src/interpreter';
import { getTask } from '../../server/src/tasks';
import { Rng } from '../../server/src/util/rng';

const task = getTask('bin_majority');

function tinyConfig(nLayer: number, nHead: number, d: number): Gpt2Config {
  return { architecture: 'GPT2LMHeadModel', nLayer, nHead, nEmbd: d, nPositions: 24, vocabSize: task.vocab.length, activation: 'gelu_new', lnEps: 1e-5 };
}

function sequences(rng: Rng, count: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < count; i++) out.push(task.generate(rng.int(1, 8), rng));
  return out;
}

/** Random perturbation of every MLP weight (as a fine-tune would leave them; F no longer centred on purpose). */
function perturbMlps(state: MaskedState, rng: Rng, scale: number): void {
  for (const w of state.mlps) for (const a of [w.fc, w.fcB, w.proj, w.projB]) for (let i = 0; i < a.length; i++) a[i] += scale * rng.normal();
}

beforeAll(async () => {
  await initBackend('wasm');
});

describe('trainable MLP weights', () => {
  it('x W through trainableLinear has the gradients of autodiff', () => {
    const rng = new Rng(1);
    const x = tf.tensor2d(Array.from({ length: 5 * 3 }, () => rng.normal()), [5, 3]);
    const w = tf.tensor2d(Array.from({ length: 3 * 4 }, () => rng.normal()), [3, 4]);
    const c = tf.tensor2d(Array.from({ length: 5 * 4 }, () => rng.normal()), [5, 4]);
    const f1 = (a: tf.Tensor, b: tf.Tensor): tf.Scalar => tf.sum(tf.mul(tf.sin(trainableLinear(a as tf.Tensor2D, tf.mul(b, 1.5) as tf.Tensor2D)), c));
    const f2 = (a: tf.Tensor, b: tf.Tensor): tf.Scalar => tf.sum(tf.mul(tf.sin(tf.matMul(a as tf.Tensor2D, tf.mul(b, 1.5) as tf.Tensor2D)), c));
    const [gx1, gw1] = tf.grads(f1)([x, w]);
    const [gx2, gw2] = tf.grads(f2)([x, w]);
    expect(Array.from(gx1.dataSync())).toEqual(Array.from(gx2.dataSync()).map((v) => expect.closeTo(v, 5)));
    expect(Array.from(gw1.dataSync())).toEqual(Array.from(gw2.dataSync()).map((v) => expect.closeTo(v, 5)));
    tf.dispose([x, w, c, gx1, gw1, gx2, gw2]);
  });

  it('gelu_new and its written-out gradient match tanh-form gelu_new under autodiff', () => {
    const x = tf.tensor2d(Array.from({ length: 40 }, (_, i) => (i - 20) / 4), [4, 10]);
    const ref = (t: tf.Tensor): tf.Tensor => tf.mul(tf.mul(t, 0.5), tf.add(1, tf.tanh(tf.mul(tf.add(t, tf.mul(tf.pow(t, 3), 0.044715)), Math.sqrt(2 / Math.PI)))));
    const w = tf.tensor2d(Array.from({ length: 40 }, (_, i) => Math.cos(i)), [4, 10]);
    const g1 = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(gelu(t as tf.Tensor2D), w)))(x);
    const g2 = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(ref(t), w)))(x);
    expect(Array.from(gelu(x).dataSync())).toEqual(Array.from(ref(x).dataSync()).map((v) => expect.closeTo(v, 5)));
    expect(Array.from(g1.dataSync())).toEqual(Array.from(g2.dataSync()).map((v) => expect.closeTo(v, 4)));
    tf.dispose([x, w, g1, g2]);
  });

  for (const splitMlps of [false, true]) {
    it(`the trainable path computes the frozen path's logits, and state round-trips (${splitMlps ? 'split' : 'unsplit'})`, () => {
      const config = tinyConfig(2, 1, 8);
      const rng = new Rng(4);
      const weights = randomWeights(config, () => rng.next(), 0.4);
      const graph = buildPathGraph(2, 1, { splitMlps });
      const folded = foldModel(config, weights);
      const state = initialState(graph, folded, [0.7, 1.3, 0.9, 2.1, 1.7]);
      perturbMlps(state, rng, 0.2);
      const model = new MaskedModel(graph, folded, state);
      const batch = makeBatch(folded, task, 'ce', sequences(rng, 4), null);
      try {
        const mask = Float32Array.from(graph.edges, () => (rng.next() < 0.8 ? 1 : 0));
        pruneDangling(graph, mask);
        const run = (): Float32Array => tf.tidy(() => model.forward(batch, tf.tile(tf.tensor2d(mask, [1, mask.length]), [batch.B, 1]) as tf.Tensor2D, null).dataSync() as Float32Array);
        const frozen = run();
        model.mlps.setTraining(true);
        const trainable = run();
        model.mlps.setTraining(false);
        const again = run();
        for (let i = 0; i < frozen.length; i++) {
          expect(trainable[i]).toBeCloseTo(frozen[i], 4);
          expect(again[i]).toBeCloseTo(frozen[i], 4);
        }
        // a plain structured-cloneable object (worker threads) that restores the same network
        const snap = structuredClone(snapshot(model));
        expect(snap.mlps.length).toBe(graph.mlps.length);
        const other = new MaskedModel(graph, folded, initialState(graph, folded, [1, 1, 1, 1, 1]));
        try {
          other.setState(snap);
          const restored = tf.tidy(() => other.forward(batch, tf.tile(tf.tensor2d(mask, [1, mask.length]), [batch.B, 1]) as tf.Tensor2D, null).dataSync());
          for (let i = 0; i < frozen.length; i++) expect(restored[i]).toBeCloseTo(frozen[i], 4);
        } finally {
          other.dispose();
        }
      } finally {
        disposeBatch(batch);
        model.dispose();
      }
    });
  }
});

describe('split-MLP graph', () => {
  it('has one copy per MLP input path (the paper\'s stage-2 sizes) and ties them per component in stage 1', () => {
    // method-pruning.md 2.2: 18 (1l1h) and 82 (2l1h) path edges with split MLPs
    expect(buildPathGraph(1, 1, { splitMlps: true }).edges.length).toBe(18);
    const g = buildPathGraph(2, 1, { splitMlps: true });
    expect(g.edges.length).toBe(82);
    expect(g.mlps.filter((u) => u.layer === 0).map((u) => g.paths[u.path].id)).toEqual(['mlp-0-wte', 'mlp-0-wpe', 'mlp-0-attn_output-0-0-wte', 'mlp-0-attn_output-0-0-wpe']);
    for (const u of g.mlps) {
      expect(g.consumers[u.consumer].edges).toEqual([u.edge]);
      expect(g.edges[u.edge!].creates).toBe(u.path);
    }
    // stage 1 sees one MLP vertex: wte -> mlp-0 is one group; the head's two paths into MLP 0 share one group
    expect(g.groups.find((x) => x.key === 'mlp-0|attn-0-0')!.edges.length).toBe(2);
    expect(g.groups.find((x) => x.key === 'lm_head|mlp-0')!.edges.length).toBe(4);
    // unsplit: the same component groups, one MLP path
    const u = buildPathGraph(2, 1);
    expect(u.groups.map((x) => x.key)).toEqual(g.groups.map((x) => x.key));
  });

  it('dangling pruning: a copy lives only through its own input edge, and dies when nothing reads it', () => {
    const g = buildPathGraph(1, 1, { splitMlps: true });
    const edge = (consumer: string, source: string): number => g.edges.find((e) => g.consumers[e.consumer].id === consumer && g.paths[e.source].id === source)!.index;
    const mask = new Float32Array(g.edges.length);
    mask[edge('mlp-0-wte', 'wte')] = 1; // read by the logits: kept
    mask[edge('lm_head', 'mlp-0-wte')] = 1;
    mask[edge('mlp-0-wpe', 'wpe')] = 1; // read by nothing: dropped
    mask[edge('lm_head', 'mlp-0-attn_output-0-0-wte')] = 1; // its copy's input edge is off: dropped
    pruneDangling(g, mask);
    const kept = g.edges.filter((e) => mask[e.index] > 0).map((e) => `${g.consumers[e.consumer].id}<-${g.paths[e.source].id}`);
    expect(kept).toEqual(['mlp-0-wte<-wte', 'lm_head<-mlp-0-wte']);
  });
});

/** gelu_new(s (x F) + fcB) P + projB for one d-vector, float64. */
function runMlp(w: MlpWeights, s: number, x: ArrayLike<number>): Float64Array {
  const d = w.projB.length;
  const h = w.fcB.length;
  const y = Float64Array.from(w.projB);
  for (let c = 0; c < h; c++) {
    let pre = w.fcB[c];
    for (let r = 0; r < d; r++) pre += s * x[r] * w.fc[r * h + c];
    const a = geluNew(pre);
    for (let k = 0; k < d; k++) y[k] += a * w.proj[c * d + k];
  }
  return y;
}

describe('split copies at the linearisation of the unsplit MLP', () => {
  it('sum to the unsplit MLP exactly at the mean inputs, and up to a second-order error around them', () => {
    const config = tinyConfig(1, 1, 8);
    const rng = new Rng(7);
    const weights = randomWeights(config, () => rng.next(), 0.4);
    const folded = foldModel(config, weights);
    const unsplit = buildPathGraph(1, 1);
    const split = buildPathGraph(1, 1, { splitMlps: true });
    const uState = initialState(unsplit, folded, [0.8, 1.4, 1.1]);
    const d = folded.d;
    const mi = unsplit.mlps[0].consumer;
    const variance = Math.exp(uState.logVar[mi]);
    const s = 1 / Math.sqrt(variance + folded.eps);
    const bcMlp = uState.bc.subarray(mi * d, (mi + 1) * d);
    const means = Float64Array.from({ length: split.paths.length * d }, () => rng.normal());
    const sState = splitStateFrom(unsplit, uState, split, d);
    meanFieldCopies(split, sState, 0, uState.mlps[0], variance, bcMlp, means, folded);
    const inputs = split.mlps.map((u) => split.edges[u.edge!].source);
    const deltas = inputs.map(() => Float64Array.from({ length: d }, () => rng.normal()));
    const error = (eps: number): number => {
      const total = Float64Array.from(bcMlp);
      const sum = new Float64Array(d);
      split.mlps.forEach((_, i) => {
        const x = Float64Array.from({ length: d }, (_, k) => means[inputs[i] * d + k] + eps * deltas[i][k]);
        for (let k = 0; k < d; k++) total[k] += x[k];
        const y = runMlp(sState.mlps[i], s, x);
        for (let k = 0; k < d; k++) sum[k] += y[k];
      });
      const ref = runMlp(uState.mlps[0], s, total);
      return Math.max(...Array.from(ref, (v, k) => Math.abs(v - sum[k])));
    };
    // (float32 weights: exact up to rounding)
    expect(error(0)).toBeLessThan(1e-5);
    // second order: halving the deviation quarters the error
    const e1 = error(0.1);
    const e2 = error(0.05);
    expect(e1).toBeGreaterThan(0);
    expect(e2 / e1).toBeGreaterThan(0.2);
    expect(e2 / e1).toBeLessThan(0.3);
  });
});

describe('MLP fine-tune in the faithful fit', () => {
  it('lowers the loss with the LN variances held, and the emitted program runs the fine-tuned weights exactly', async () => {
    const config = tinyConfig(1, 1, 8);
    const rng = new Rng(21);
    const weights = randomWeights(config, () => rng.next(), 0.4);
    const folded = foldModel(config, weights);
    const graph = buildPathGraph(1, 1);
    // variances far from the data's: the LLN-A model is off, and only the MLP may make up for it
    const init = initialState(graph, folded, [3, 0.2, 2]);
    const model = new MaskedModel(graph, folded, init);
    const seqs = sequences(rng, 24);
    const orig = seqs.map((seq) => Float32Array.from(originalForward(config, weights, seq)));
    const train = [0, 8, 16].map((i) => makeBatch(folded, task, 'ce', seqs.slice(i, i + 8), orig.slice(i, i + 8)));
    const ctx: PruneContext = { graph, folded, task, objective: 'ce', model, train, evalSets: [{ lengths: [1, 8], seqs, orig }], evalBatch: 8, hooks: {} };
    try {
      const allOn = new Float32Array(graph.edges.length).fill(1);
      const before = await evaluate(ctx, allOn);
      const fit = await trainFaithful(ctx, 60, 'fine-tune', { mlp: true, ln: false, bcLr: 0 });
      const after = await evaluate(ctx, allOn);
      expect(fit.last).toBeLessThan(0.8 * fit.first);
      expect(after.kl).toBeLessThan(before.kl);
      const state = snapshot(model);
      // the variances were held and the MLP moved
      expect(Array.from(state.logVar)).toEqual(Array.from(init.logVar));
      expect(Math.max(...state.mlps[0].proj.map((v, i) => Math.abs(v - init.mlps[0].proj[i])))).toBeGreaterThan(1e-3);
      // the program carries the fine-tuned weights: the interpreter reproduces the masked model's logits
      const { program } = emitProgram({ graph, folded, state, mask: allOn, vocab: [...task.vocab], objective: 'ce', task: task.name });
      const batch = train[0];
      const out = tf.tidy(() => model.forward(batch, tf.ones([batch.B, graph.edges.length]) as tf.Tensor2D, null).dataSync());
      const results = runBatch(program, batch.seqs);
      const V = folded.V;
      batch.seqs.forEach((seq, b) => {
        for (let i = 0; i < seq.length * V; i++) expect(results[b].logits[i]).toBeCloseTo(out[b * batch.T * V + i], 3);
      });
    } finally {
      for (const b of train) disposeBatch(b);
      model.dispose();
    }
  });
});
