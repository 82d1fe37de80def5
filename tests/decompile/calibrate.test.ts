// Calibration of a pruned run on lengths 0-150 (search.ts): with its mask fixed, a run re-fits its LN variances,
// consumer constants and the ablation constants of the paths it turned off, on a separate long pool, and keeps the
// result only when its match holds or rises.
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../server/src/model/backend';
import { randomWeights } from '../../server/src/model/weights';
import type { Gpt2Config } from '../../server/src/model/types';
import { buildPathGraph, foldModel, initialState, originalForward } from '../../server/src/decompile/reparameterize';
import { MaskedModel, type Batch } from '../../server/src/decompile/prune/masked';
import { disposeBatch, groupUnits, makeBatch, snapshot, trainFaithful, trainStage, type PruneContext } from '../../server/src/decompile/prune/train';
import { runOnce } from '../../server/src/decompile/prune/search';
import { getTask } from '../../server/src/tasks';
import { Rng } from '../../server/src/util/rng';

const task = getTask('bin_majority');
const config: Gpt2Config = { architecture: 'GPT2LMHeadModel', nLayer: 1, nHead: 2, nEmbd: 8, nPositions: 40, vocabSize: task.vocab.length, activation: 'gelu_new', lnEps: 1e-5 };

beforeAll(async () => {
  await initBackend('wasm');
});

function setup(seed: number): { ctx: PruneContext; batches: Batch[]; dispose: () => void } {
  const rng = new Rng(seed);
  const weights = randomWeights(config, () => rng.next(), 0.5);
  const folded = foldModel(config, weights);
  const graph = buildPathGraph(1, 2);
  const model = new MaskedModel(graph, folded, initialState(graph, folded, [1, 1, 1]));
  const pool = (lo: number, hi: number, n: number): Batch[] => {
    const seqs = Array.from({ length: n }, () => task.generate(rng.int(lo, hi), rng));
    const orig = seqs.map((s) => Float32Array.from(originalForward(config, weights, s)));
    const out: Batch[] = [];
    for (let i = 0; i < n; i += 8) out.push(makeBatch(folded, task, 'ce', seqs.slice(i, i + 8), orig.slice(i, i + 8)));
    return out;
  };
  const train = pool(1, 6, 16);
  const long = pool(20, 30, 24);
  const evalSeqs = Array.from({ length: 16 }, () => task.generate(rng.int(1, 30), rng));
  const evalSets = [{ lengths: [1, 30] as [number, number], seqs: evalSeqs, orig: evalSeqs.map((s) => Float32Array.from(originalForward(config, weights, s))) }];
  const ctx: PruneContext = { graph, folded, task, objective: 'ce', model, train, long, evalSets, evalBatch: 8, hooks: {} };
  const batches = [...train, ...long];
  return { ctx, batches, dispose: () => { for (const b of batches) disposeBatch(b); model.dispose(); } };
}

/** Runs `fn` on a fresh setup and disposes of it whatever happens. */
async function withSetup(seed: number, fn: (ctx: PruneContext) => Promise<void>): Promise<void> {
  const { ctx, dispose } = setup(seed);
  try {
    await fn(ctx);
  } finally {
    dispose();
  }
}

describe('calibration on long sequences', () => {
  it('with a fixed mask, lowers the loss on the long pool and moves only the ablation constants of turned-off paths', () =>
    withSetup(3, async (ctx) => {
      const { graph, model } = ctx;
      // turn off every edge from head 1's path: that path's ablation constant is the only one that may move
      const off = graph.paths.findIndex((p) => p.id.startsWith('attn_output-0-1'));
      expect(off).toBeGreaterThan(1);
      const mask = Float32Array.from(graph.edges, (e) => (e.source === off ? 0 : 1));
      const before = snapshot(model);
      const fit = await trainFaithful(ctx, 40, 'calibrate', { pool: ctx.long, mask, oa: true, lnLr: 0.02, bcLr: 1e-3 });
      expect(fit.last).toBeLessThan(fit.first);
      const after = snapshot(model);
      const d = ctx.folded.d;
      const moved = (p: number): number => Math.max(...Array.from({ length: d }, (_, i) => Math.abs(after.oa[p * d + i] - before.oa[p * d + i])));
      expect(moved(off)).toBeGreaterThan(1e-4);
      graph.paths.forEach((_, p) => {
        if (p !== off) expect(moved(p)).toBe(0);
      });
      expect(Array.from(after.logVar)).not.toEqual(Array.from(before.logVar));
      expect(tf.memory().numTensors).toBeLessThan(1000);
    }));

  it('runs in a search run that misses the target, keeps only an improvement, and is off with 0 steps', () =>
    withSetup(5, async (ctx) => {
      const start = snapshot(ctx.model);
      const settings = { target: 1.01, lambda0: 1e-2, maxRuns: 1, stage1Steps: 30, stage2Steps: 20, minSteps: 10, patience: 10, seed: 1, stages: 2 as const };
      const r = await runOnce(ctx, 1e-2, start, null, { ...settings, calibrateSteps: 30 }, 0);
      expect(r.calibration).toBeDefined();
      const c = r.calibration!;
      expect(c.steps).toBe(30);
      // the run reports the match it keeps: the calibrated one when kept, else the one before
      expect(r.match).toBe(c.kept ? c.after : c.before);
      if (c.kept) expect(c.after).toBeGreaterThanOrEqual(c.before);
      const r0 = await runOnce(ctx, 1e-2, start, null, { ...settings, calibrateSteps: 0 }, 0);
      expect(r0.calibration).toBeUndefined();
      // without a long pool there is nothing to calibrate on
      const r1 = await runOnce({ ...ctx, long: undefined }, 1e-2, start, null, { ...settings, calibrateSteps: 30 }, 0);
      expect(r1.calibration).toBeUndefined();
    }));

  it('pruning stages hold the LN variances when told (short-pool pruning after a 0-150 variance fit)', () =>
    withSetup(7, async (ctx) => {
      const g = groupUnits(ctx.graph);
      const settings = { steps: 20, minSteps: 20, patience: 10, lambda: 1e-2, seed: 3 };
      const before = snapshot(ctx.model);
      await trainStage(ctx, g, new Float32Array(g.count).fill(2), { ...settings, frozenLn: true }, 'stage 1');
      const held = snapshot(ctx.model);
      expect(Array.from(held.logVar)).toEqual(Array.from(before.logVar));
      // the constants still learn
      expect(Array.from(held.bc)).not.toEqual(Array.from(before.bc));
      await trainStage(ctx, g, new Float32Array(g.count).fill(2), settings, 'stage 1');
      expect(Array.from(snapshot(ctx.model).logVar)).not.toEqual(Array.from(held.logVar));
    }));
});
