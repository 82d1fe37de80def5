// Pruning stage 3 on a tiny seeded model: the targets come from the stage-3 network with one query-key product
// removed, so that product is not needed (keeping it only hurts); the stage must prune it, keep the products that
// matter, and start exactly at the stage-2 network (beta = the query constant).
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../server/src/model/backend';
import { randomWeights } from '../../server/src/model/weights';
import type { Gpt2Config } from '../../server/src/model/types';
import { buildPathGraph, foldModel, initialState } from '../../server/src/decompile/reparameterize';
import { MaskedModel, type Batch, type HeadScores } from '../../server/src/decompile/prune/masked';
import { disposeBatch, evaluate, makeBatch, type PruneContext } from '../../server/src/decompile/prune/train';
import { fixedScores, initialBeta, selectorUnits, trainSelectors } from '../../server/src/decompile/prune/selectors';
import { getTask } from '../../server/src/tasks';
import { Rng } from '../../server/src/util/rng';

const task = getTask('unique_copy');

beforeAll(async () => {
  await initBackend('wasm');
});

describe('pruning stage 3 (query-key products)', () => {
  it('prunes a product that is not needed and keeps the ones that are', async () => {
    const config: Gpt2Config = { architecture: 'GPT2LMHeadModel', nLayer: 1, nHead: 1, nEmbd: 8, nPositions: 40, vocabSize: task.vocab.length, activation: 'gelu_new', lnEps: 1e-5 };
    const rng = new Rng(7);
    const weights = randomWeights(config, () => rng.next(), 0.8);
    const graph = buildPathGraph(1, 1);
    const folded = foldModel(config, weights);
    const state = initialState(graph, folded, [1, 1, 1]);
    const model = new MaskedModel(graph, folded, state);
    const mask2 = new Float32Array(graph.edges.length).fill(1);
    const units = selectorUnits(graph, mask2);
    const U = units.kEdge.length;
    // q, k in {wte, wpe}: 4 products, 2 key-only terms
    expect([...units.qEdge].filter((q) => q >= 0).length).toBe(4);
    expect(U).toBe(6);
    const beta = initialBeta(graph, folded, state, mask2, units);
    const seqsOf = (seed: number, count: number): number[][] => {
      const r = new Rng(seed);
      return Array.from({ length: count }, () => task.generate(r.int(3, 6), r));
    };
    const logits = (seqs: number[][], scores: HeadScores | undefined): Float32Array[] => {
      const batch = makeBatch(folded, task, 'ce', seqs, null);
      try {
        const out = tf.tidy(() => model.forward(batch, tf.ones([batch.B, graph.edges.length]) as tf.Tensor2D, null, undefined, scores).dataSync() as Float32Array);
        const V = folded.V;
        return seqs.map((s, b) => out.slice(b * batch.T * V, (b * batch.T + s.length) * V));
      } finally {
        disposeBatch(batch);
      }
    };
    const probe = seqsOf(1, 8);
    const all = new Float32Array(U).fill(1);
    // every unit on with the initial beta is the stage-2 network
    const stage2 = logits(probe, undefined);
    const stage3 = logits(probe, fixedScores(graph, folded, { ...units, beta, keep: all }));
    stage2.forEach((row, b) => row.forEach((x, i) => expect(stage3[b][i]).toBeCloseTo(x, 3)));
    // the product that moves the logits most is the one the targets leave out
    const effect = (u: number): number => {
      const keep = Float32Array.from(all, (_, i) => (i === u ? 0 : 1));
      const out = logits(probe, fixedScores(graph, folded, { ...units, beta, keep }));
      let s = 0;
      out.forEach((row, b) => row.forEach((x, i) => (s += Math.abs(x - stage3[b][i]))));
      return s;
    };
    const products = Array.from({ length: U }, (_, u) => u).filter((u) => units.qEdge[u] >= 0);
    const effects = products.map(effect);
    const drop = products[effects.indexOf(Math.max(...effects))];
    const teacher = fixedScores(graph, folded, { ...units, beta, keep: Float32Array.from(all, (_, i) => (i === drop ? 0 : 1)) });
    const batches: Batch[] = [];
    for (let i = 0; i < 6; i++) {
      const seqs = seqsOf(100 + i, 12);
      batches.push(makeBatch(folded, task, 'ce', seqs, logits(seqs, teacher)));
    }
    const evalSeqs = seqsOf(999, 24);
    const ctx: PruneContext = { graph, folded, task, objective: 'ce', model, train: batches, evalSets: [{ lengths: [3, 6], seqs: evalSeqs, orig: logits(evalSeqs, teacher) }], evalBatch: 12, hooks: {} };
    try {
      // before: every unit on (the stage-2 network) against the teacher
      const before = await evaluate(ctx, mask2, fixedScores(graph, folded, { ...units, beta, keep: all }));
      const r = await trainSelectors(ctx, mask2, { steps: 800, preSteps: 20, minSteps: 400, patience: 50, lambda: 1e-4, seed: 3 }, 'stage 3');
      expect([...r.qEdge]).toEqual([...units.qEdge]);
      expect(r.preSteps).toBe(20);
      expect(r.keep[drop]).toBe(0);
      // the other products all matter (each moves the logits by over half as much): they survive
      for (const u of products) if (u !== drop) expect(r.keep[u]).toBe(1);
      // and the pruned network is far closer to the teacher than the stage-2 network it started from
      const after = await evaluate(ctx, r.mask, fixedScores(graph, folded, r));
      expect(after.kl).toBeLessThan(0.05 * before.kl);
      expect(after.match).toBeGreaterThan(before.match);
    } finally {
      for (const b of batches) disposeBatch(b);
      model.dispose();
    }
  }, 120_000);
});
