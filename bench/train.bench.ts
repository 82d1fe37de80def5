// Training and evaluation throughput for the shipped architecture (1 layer, 1 head, width 16): optimisation
// steps/s of `rasp train`'s loop (batch 64, lengths 0-50, AdamW) on bce_D2 and bin_majority, and `rasp eval`'s
// throughput (sequences/s and tokens/s per length bin) on the shipped model. Needs no ../shared.
//   npm run bench -- train
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { initBackend } from '../server/src/model/backend';
import { modelLogits, releaseTfModel } from '../server/src/model/forward';
import { loadModel } from '../server/src/model/load';
import { evaluateTask } from '../server/src/tasks/evaluate';
import { getTask, sampleBins } from '../server/src/tasks/index';
import { trainModel } from '../server/src/train/index';
import { table } from './table';

const root = resolve(__dirname, '../..');
const SHIPPED = join(root, 'examples', 'models', 'bce_D2-1l1h16d');

async function trainSpeed(task: string, steps: number): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'rasp-bench-train-'));
  const cpu0 = process.cpuUsage();
  try {
    const r = await trainModel({
      task,
      layers: 1,
      heads: 1,
      width: 16,
      steps,
      evalEvery: 1e9,
      evalSamples: 1,
      finalSamples: 1,
      finalBins: [[0, 10]],
      out: join(dir, 'm'),
    });
    const cpu = process.cpuUsage(cpu0);
    // CPU time per step (this process only) is the figure that does not depend on how busy the machine is.
    const cpuMs = (cpu.user + cpu.system) / 1000 / r.steps;
    return [task, '1l1h16d', '64', String(r.steps), r.seconds.toFixed(1), r.stepsPerSecond.toFixed(2), cpuMs.toFixed(0)];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  await initBackend();
  const rows = [await trainSpeed('bce_D2', 60), await trainSpeed('bin_majority', 60)];
  console.log('Training (rasp train loop; wall clock depends on the load of the shared machine, CPU time much less)');
  console.log(table(['task', 'arch', 'batch', 'steps', 'seconds', 'steps/s', 'CPU ms/step'], rows));
  console.log('');

  if (!existsSync(SHIPPED)) {
    console.log(`(no shipped model at ${SHIPPED}: eval throughput skipped)`);
    return;
  }
  const model = await loadModel(SHIPPED);
  const task = getTask(model.card.task);
  const evalRows: string[][] = [];
  for (const bin of [[0, 50], [51, 100], [101, 150]] as [number, number][]) {
    const samples = 500;
    const tokens = sampleBins(task, [bin], samples, 0)[0].reduce((s, q) => s + q.length, 0);
    const t0 = performance.now();
    const r = await evaluateTask(task, (b) => modelLogits(model, b), { bins: [bin], samples, seed: 0, maxBatch: 256 });
    const s = (performance.now() - t0) / 1000;
    evalRows.push([`${bin[0]}-${bin[1]}`, String(samples), s.toFixed(2), (samples / s).toFixed(0), (tokens / s).toFixed(0), r.bins[0].accuracy.toFixed(3)]);
  }
  releaseTfModel(model);
  console.log(`Evaluation (rasp eval on ${model.card.task}, ${SHIPPED.slice(root.length + 1)})`);
  console.log(table(['lengths', 'samples', 'seconds', 'sequences/s', 'tokens/s', 'accuracy'], evalRows));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
