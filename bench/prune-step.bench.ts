// One pruning step of the masked, re-parameterized model (forward + backward + the gradients stage 1 uses: mask
// logits via the mask matrix, LN log-variances, ablation constants, consumer constants), per model and sequence
// length, and where its time goes by kernel. This is the inner loop of `rasp extract`'s search: its cost times
// ~500-1,500 steps per run is most of the extraction on the wide models.
//   npm run bench -- prune-step                    the shipped model and (when ../shared is beside) sort, bce_D4
//   PRUNE_MODELS=a,b PRUNE_LENGTHS=40,150 PRUNE_BATCH=8 npm run bench -- prune-step
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { MaskedModel } from '../server/src/decompile/prune/masked';
import { makeBatch, disposeBatch } from '../server/src/decompile/prune/train';
import { buildPathGraph, foldModel, initialState, meanLnVariances } from '../server/src/decompile/reparameterize/index';
import { initBackend } from '../server/src/model/backend';
import { modelLogits } from '../server/src/model/forward';
import { loadModel } from '../server/src/model/load';
import { getTask, sampleBins } from '../server/src/tasks/index';
import { table } from './table';

const REPS = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  await initBackend();
  const shared = resolve(process.cwd(), '..', 'shared', 'models');
  const names = process.env.PRUNE_MODELS?.split(',') ?? ['bce_D2-@1l1h16d3lr00drop', 'sort-@1l1h256d3lr01drop', 'bce_D4-@1l2h256d4lr00drop'];
  const dirs = names.map((n) => (existsSync(n) ? n : join(shared, n))).filter((d) => existsSync(d));
  if (dirs.length === 0) dirs.push(resolve('examples/models/bce_D2-1l1h16d'));
  const lengths = (process.env.PRUNE_LENGTHS ?? '40,150').split(',').map(Number);
  const B = Number(process.env.PRUNE_BATCH ?? 8);
  const rows: string[][] = [];
  const kernelRows: string[][] = [];
  for (const dir of dirs) {
    const model = await loadModel(dir);
    const task = getTask(model.card.task);
    const graph = buildPathGraph(model.config.nLayer, model.config.nHead);
    const folded = foldModel(model.config, model.weights);
    const special = new Set([task.special.pad, task.special.eos]);
    for (const len of lengths) {
      // sequences whose input length is exactly len (the longest of a 0-len pool sets a batch's T)
      const seqs = sampleBins(task, [[Math.max(task.minLength, len), Math.min(task.maxLength, len)]], B, 5)[0];
      const orig = await modelLogits(model, seqs);
      const variances = meanLnVariances(model.config, model.weights, seqs, special);
      const masked = new MaskedModel(graph, folded, initialState(graph, folded, variances));
      const batch = makeBatch(folded, task, model.card.objective, seqs, orig);
      const E = graph.edges.length;
      const M = tf.variable(tf.ones([B, E]) as tf.Tensor2D);
      const gate = tf.zeros([B, E]) as tf.Tensor2D;
      const step = (): void => {
        tf.tidy(() => {
          const { value, grads } = tf.variableGrads(() => masked.loss(batch, masked.forward(batch, M, gate), model.card.objective), [M, masked.logVar, masked.oa, masked.bc]);
          value.dataSync();
          Object.values(grads).forEach((g) => g.dataSync());
        });
      };
      step();
      const walls: number[] = [];
      const cpus: number[] = [];
      for (let i = 0; i < REPS; i++) {
        const t0 = performance.now();
        const c0 = process.cpuUsage();
        step();
        const c = process.cpuUsage(c0);
        walls.push(performance.now() - t0);
        cpus.push((c.user + c.system) / 1000);
      }
      const prof = await tf.profile(() => step());
      const byKernel = new Map<string, number>();
      for (const k of prof.kernels) byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + (k.kernelTimeMs as number));
      const total = [...byKernel.values()].reduce((a, x) => a + x, 0);
      const top = [...byKernel.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5);
      rows.push([basename(dir), `${B} x ${batch.T}`, median(walls).toFixed(0), median(cpus).toFixed(0), String(prof.kernels.length)]);
      kernelRows.push([basename(dir), String(batch.T), top.map(([n, t]) => `${n} ${((100 * t) / total).toFixed(0)}%`).join(', ')]);
      tf.dispose([M, gate]);
      disposeBatch(batch);
      masked.dispose();
    }
  }
  console.log(`pruning step (forward + backward, every edge on), tfjs ${tf.version.tfjs} ${tf.getBackend()}, median of ${REPS}`);
  console.log(table(['model', 'batch', 'wall ms', 'CPU ms', 'kernels'], rows));
  console.log('\nwhere the kernel time goes (top 5)');
  console.log(table(['model', 'T', 'kernels by share of kernel time'], kernelRows));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
