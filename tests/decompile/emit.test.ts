// The emitted program, run by the interpreter, computes what the masked (pruned) network computes: for random
// weights, random learned state (LN variances, ablation constants, consumer constants) and random masks.
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../server/src/model/backend';
import { randomWeights } from '../../server/src/model/weights';
import type { Gpt2Config } from '../../server/src/model/types';
import { runBatch } from '../../server/src/interpreter';
import { buildPathGraph, foldModel, initialState, originalForward, pruneDangling } from '../../server/src/decompile/reparameterize';
import { MaskedModel, type HeadScores } from '../../server/src/decompile/prune/masked';
import { cleanupStage3, configEdges, fixedScores, initialBeta, selectorUnits } from '../../server/src/decompile/prune/selectors';
import { makeBatch, disposeBatch } from '../../server/src/decompile/prune/train';
import { emitProgram } from '../../server/src/decompile/emit/program';
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

beforeAll(async () => {
  await initBackend('wasm');
});

describe('re-parameterization and emission', () => {
  it('the masked model with every edge on is the LLN-A model (fixed variances) exactly', () => {
    const config = tinyConfig(2, 2, 8);
    const rng = new Rng(3);
    const weights = randomWeights(config, () => rng.next(), 0.4);
    const graph = buildPathGraph(2, 2);
    const folded = foldModel(config, weights);
    const variances = [0.7, 1.3, 0.9, 2.1, 1.7];
    const model = new MaskedModel(graph, folded, initialState(graph, folded, variances));
    const seqs = sequences(rng, 6);
    const batch = makeBatch(folded, task, 'ce', seqs, null);
    try {
      const out = tf.tidy(() => model.forward(batch, tf.ones([batch.B, graph.edges.length]) as tf.Tensor2D, null).dataSync());
      const V = folded.V;
      seqs.forEach((seq, b) => {
        const ref = originalForward(config, weights, seq, undefined, variances);
        for (let i = 0; i < seq.length * V; i++) expect(out[b * batch.T * V + i]).toBeCloseTo(ref[i], 3);
      });
    } finally {
      disposeBatch(batch);
      model.dispose();
    }
  });

  // unsplit with the original MLP weights, unsplit and split with changed ("fine-tuned") MLP weights
  for (const [nLayer, nHead, mlp] of [
    [1, 1, 'original'],
    [2, 2, 'original'],
    [1, 1, 'fine-tuned'],
    [2, 2, 'fine-tuned'],
    [1, 1, 'split'],
    [2, 1, 'split'],
  ] as const) {
    it(`the program computes the pruned network's logits (${nLayer} layer(s), ${nHead} head(s), ${mlp} MLPs, random masks)`, () => {
      const config = tinyConfig(nLayer, nHead, 8);
      const rng = new Rng(10 + nLayer);
      const weights = randomWeights(config, () => rng.next(), 0.4);
      const graph = buildPathGraph(nLayer, nHead, { splitMlps: mlp === 'split' });
      const folded = foldModel(config, weights);
      const state = initialState(graph, folded, Array.from({ length: 2 * nLayer + 1 }, () => 0.5 + rng.next()));
      for (let i = 0; i < state.logVar.length; i++) state.logVar[i] += rng.next() - 0.5;
      for (let i = 0; i < state.oa.length; i++) state.oa[i] = 0.3 * rng.normal();
      for (let i = 0; i < state.bc.length; i++) state.bc[i] += 0.3 * rng.normal();
      if (mlp !== 'original') {
        // every unit its own weights (as fine-tuning or the split copies' pre-training leaves them)
        for (const w of state.mlps) for (const a of [w.fc, w.fcB, w.proj, w.projB]) for (let i = 0; i < a.length; i++) a[i] += 0.2 * rng.normal();
      }
      const model = new MaskedModel(graph, folded, state);
      // the masked model keeps F centred (prune/mlps.ts); emit what it runs
      state.mlps = model.state().mlps;
      const seqs = sequences(rng, 5);
      const batch = makeBatch(folded, task, 'ce', seqs, null);
      try {
        for (let trial = 0; trial < 3; trial++) {
          const mask = Float32Array.from(graph.edges, () => (rng.next() < 0.65 ? 1 : 0));
          pruneDangling(graph, mask);
          const M = (): tf.Tensor2D => tf.tile(tf.tensor2d(mask, [1, mask.length]), [batch.B, 1]) as tf.Tensor2D;
          const out = tf.tidy(() => model.forward(batch, M(), null).dataSync());
          // skipping the statically absent edges (and dead heads/MLPs) changes nothing
          const skipped = tf.tidy(() => model.forward(batch, M(), null, Uint8Array.from(mask, (m) => (m > 0 ? 0 : 1))).dataSync());
          for (let i = 0; i < out.length; i++) expect(skipped[i]).toBeCloseTo(out[i], 4);
          const { program, edges } = emitProgram({ graph, folded, state, mask, vocab: [...task.vocab], objective: 'ce', task: task.name });
          expect(edges).toBe(mask.reduce((a, m) => a + m, 0));
          const results = runBatch(program, seqs);
          const V = folded.V;
          let maxDiff = 0;
          let scale = 0;
          seqs.forEach((seq, b) => {
            for (let i = 0; i < seq.length * V; i++) {
              maxDiff = Math.max(maxDiff, Math.abs(out[b * batch.T * V + i] - results[b].logits[i]));
              scale = Math.max(scale, Math.abs(results[b].logits[i]));
            }
          });
          expect(maxDiff).toBeLessThan(1e-3 * Math.max(1, scale));
          // one statement per kept select/aggregate/MLP/projection, and a prediction last
          expect(program.statements.at(-1)?.kind).toBe('prediction');
          for (const st of program.statements) expect(st.provenance).toBeDefined();
          // one opaque line per live MLP unit; a split copy reads exactly its one path
          const mlpLines = program.statements.filter((st) => st.kind === 'elementwise' && st.fn.name === 'mlp');
          expect(mlpLines.length).toBe(graph.mlps.filter((u) => graph.consumers[u.consumer].edges.some((e) => mask[e] > 0)).length);
          if (mlp === 'split') for (const st of mlpLines) expect(st.kind === 'elementwise' ? st.inputs.length : 0).toBe(1);
        }
      } finally {
        disposeBatch(batch);
        model.dispose();
      }
    });
  }

  for (const [nLayer, nHead] of [
    [1, 2],
    [2, 2],
  ] as const) {
    it(`stage 3: the program computes the selector-masked network's logits (${nLayer} layer(s), ${nHead} heads, random units and beta)`, () => {
      const config = tinyConfig(nLayer, nHead, 8);
      const rng = new Rng(40 + nLayer);
      const weights = randomWeights(config, () => rng.next(), 0.4);
      const graph = buildPathGraph(nLayer, nHead);
      const folded = foldModel(config, weights);
      const state = initialState(graph, folded, Array.from({ length: 2 * nLayer + 1 }, () => 0.5 + rng.next()));
      for (let i = 0; i < state.logVar.length; i++) state.logVar[i] += rng.next() - 0.5;
      for (let i = 0; i < state.oa.length; i++) state.oa[i] = 0.3 * rng.normal();
      for (let i = 0; i < state.bc.length; i++) state.bc[i] += 0.3 * rng.normal();
      const model = new MaskedModel(graph, folded, state);
      const seqs = sequences(rng, 5);
      const batch = makeBatch(folded, task, 'ce', seqs, null);
      const V = folded.V;
      const logitsOf = (mask: Float32Array, scores?: HeadScores): Float32Array =>
        tf.tidy(() => {
          const M = tf.tile(tf.tensor2d(mask, [1, mask.length]), [batch.B, 1]) as tf.Tensor2D;
          return model.forward(batch, M, null, Uint8Array.from(mask, (m) => (m > 0 ? 0 : 1)), scores).dataSync() as Float32Array;
        });
      const maxRel = (a: Float32Array, b: ArrayLike<number>[]): number => {
        let maxDiff = 0;
        let scale = 1;
        seqs.forEach((seq, r) => {
          for (let i = 0; i < seq.length * V; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(a[r * batch.T * V + i] - b[r][i]));
            scale = Math.max(scale, Math.abs(b[r][i]));
          }
        });
        return maxDiff / scale;
      };
      try {
        let selects = 0;
        let emptyHeads = 0;
        for (let trial = 0; trial < 4; trial++) {
          const mask2 = Float32Array.from(graph.edges, () => (rng.next() < 0.7 ? 1 : 0));
          pruneDangling(graph, mask2);
          const units = selectorUnits(graph, mask2);
          const U = units.kEdge.length;
          // every unit on with the initial beta is the stage-2 network (query-only terms cancel in the softmax)
          const full = { ...units, beta: initialBeta(graph, folded, state, mask2, units), keep: new Float32Array(U).fill(1) };
          const stage2 = logitsOf(mask2);
          const asRows = (x: Float32Array): Float32Array[] => seqs.map((_, r) => x.subarray(r * batch.T * V, (r + 1) * batch.T * V));
          expect(maxRel(logitsOf(mask2, fixedScores(graph, folded, full)), asRows(stage2))).toBeLessThan(1e-4);
          // random unit mask and beta, then the unused-path cleanup
          // trial 0 prunes every unit: each live head attends uniformly (`s=[]`)
          const keep0 = Float32Array.from({ length: U }, () => (trial > 0 && rng.next() < 0.5 ? 1 : 0));
          const beta = Float32Array.from({ length: U * folded.dh }, () => rng.normal());
          const { mask, keep } = cleanupStage3(graph, mask2, units, keep0);
          const sel = { ...units, beta, keep };
          const out = logitsOf(mask, fixedScores(graph, folded, sel));
          const { program, edges } = emitProgram({ graph, folded, state, mask, selectors: sel, vocab: [...task.vocab], objective: 'ce', task: task.name });
          expect(edges).toBe(configEdges(graph, mask, keep));
          const results = runBatch(program, seqs);
          expect(maxRel(out, results.map((r) => r.logits))).toBeLessThan(1e-3);
          // one select per kept unit, each with its layer, head and paths; aggregates sum their head's selects
          const sels = program.statements.filter((st) => st.kind === 'select');
          expect(sels.length).toBe(keep.reduce((a, k) => a + k, 0));
          selects += sels.length;
          for (const st of program.statements) {
            expect(st.provenance).toBeDefined();
            if (st.kind === 'select') expect(st.provenance!.paths.k).toBeDefined();
            if (st.kind !== 'aggregate') continue;
            if (st.selectors.length === 0) emptyHeads++;
            for (const name of st.selectors) {
              const s = sels.find((x) => x.name === name)!;
              expect([s.provenance!.layer, s.provenance!.head]).toEqual([st.provenance!.layer, st.provenance!.head]);
            }
          }
        }
        expect(selects).toBeGreaterThan(0);
        expect(emptyHeads).toBeGreaterThan(0);
      } finally {
        disposeBatch(batch);
        model.dispose();
      }
    });
  }

  it('dangling pruning removes edges that feed nothing and edges from dead sources', () => {
    const graph = buildPathGraph(2, 1);
    const mask = new Float32Array(graph.edges.length);
    const edge = (consumer: string, source: string): number =>
      graph.edges.find((e) => graph.consumers[e.consumer].id === consumer && graph.paths[e.source].id === source)!.index;
    // layer-0 head reads the token; its output feeds layer-1 q only, but layer-1 head's value path is absent
    mask[edge('v-0-0', 'wte')] = 1;
    mask[edge('q-1-0', 'attn_output-0-0-wte')] = 1;
    mask[edge('lm_head', 'wte')] = 1;
    // an MLP edge from a head path that does not exist (its v edge is off)
    mask[edge('mlp-1', 'attn_output-0-0-wpe')] = 1;
    pruneDangling(graph, mask);
    const kept = graph.edges.filter((e) => mask[e.index] > 0).map((e) => `${graph.consumers[e.consumer].id}<-${graph.paths[e.source].id}`);
    expect(kept).toEqual(['lm_head<-wte']);
  });
});
