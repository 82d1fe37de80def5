// Forward-pass benchmark on the paper's checkpoints (../shared/models; skipped with a note when absent):
// tokens/s of the forward pass at batch 64 x length 100, forward+backward in the decompiler's setting (frozen
// weights, gradient w.r.t. a mask on every residual contribution) and in training's (all parameters trainable),
// and the peak resident memory of a process doing all of it. Each model runs in its own process so peaks are
// per model. Timings are medians over a few repetitions after a warm-up; expect 15-40% run-to-run noise.
//   npm run bench -- model
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { initBackend } from '../server/src/model/backend';
import { createTfModel, forward, makeBatch, setBmmKernel, type Batch, type TfModel } from '../server/src/model/forward';
import { loadModel } from '../server/src/model/load';
import { Rng } from '../server/src/util/rng';

const MODELS = ['sort-@1l1h256d3lr01drop', 'unique_copy-@2l1h64d3lr01drop'];
const BATCH = 64;
const LENGTH = 100;
const REPS = 3;

interface Result {
  model: string;
  /** Tokens per second by wall-clock and by CPU time. */
  forward: Rate;
  forwardMatmulAttn: Rate;
  backwardMasks: Rate;
  backwardTrain: Rate;
  /** Peak RSS after the forward runs only, and at the end (after both backward settings). */
  peakForwardMB: number;
  peakMB: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Median seconds of `fn` (which must leave no tensors behind) over REPS runs after one warm-up, as wall-clock time
 * and as this process's CPU time. The wasm backend runs on one thread, so on an idle machine both agree; on a
 * shared machine the CPU time is the fairer figure.
 */
async function time(label: string, fn: () => Promise<void>): Promise<{ wall: number; cpu: number }> {
  const w0 = performance.now();
  await fn();
  process.stderr.write(`  ${label}: warm-up ${((performance.now() - w0) / 1000).toFixed(2)} s\n`);
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < REPS; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await fn();
    const c = process.cpuUsage(c0);
    walls.push((performance.now() - t0) / 1000);
    cpus.push((c.user + c.system) / 1e6);
  }
  return { wall: median(walls), cpu: median(cpus) };
}

type Rate = { wall: number; cpu: number };

async function forwardOnly(tm: TfModel, batch: Batch): Promise<void> {
  const logits = tf.tidy(() => forward(tm, batch).logits);
  await logits.data();
  logits.dispose();
}

function nextTokenLoss(tm: TfModel, batch: Batch, targets: tf.Tensor, masks?: Map<string, tf.Variable>): tf.Scalar {
  const out = forward(tm, batch, {
    hooks: masks ? { contribution: (name, v) => (masks.has(name) ? (tf.mul(v, masks.get(name) as tf.Variable) as tf.Tensor3D) : undefined) } : {},
  });
  return tf.losses.softmaxCrossEntropy(targets, out.logits) as tf.Scalar;
}

function rate(tokens: number, t: { wall: number; cpu: number }): Rate {
  return { wall: tokens / t.wall, cpu: tokens / t.cpu };
}

async function one(dir: string): Promise<Result> {
  await initBackend();
  const model = await loadModel(dir);
  const rng = new Rng(1);
  const V = model.config.vocabSize;
  const seqs = Array.from({ length: BATCH }, () => Array.from({ length: LENGTH }, () => rng.int(0, V - 1)));
  const batch = makeBatch(model.config, seqs);
  const targets = tf.oneHot(tf.tensor2d(seqs.map((s) => [...s.slice(1), s[0]]), undefined, 'int32'), V);
  const tokens = BATCH * LENGTH;

  const frozen = createTfModel(model.config, model.weights);
  const fwd = await time('forward', () => forwardOnly(frozen, batch));
  setBmmKernel('matmul');
  const fwdMatmul = await time('forward (matMul attention)', () => forwardOnly(frozen, batch));
  setBmmKernel('depthwise');
  const peakForwardMB = process.resourceUsage().maxRSS / 1024;

  // Decompiler setting: one scalar mask per residual contribution, weights frozen.
  const masks = new Map<string, tf.Variable>();
  for (let l = 0; l < model.config.nLayer; l++) {
    for (let h = 0; h < model.config.nHead; h++) masks.set(`attn_output-${l}-${h}`, tf.variable(tf.scalar(1)));
    masks.set(`mlp-${l}`, tf.variable(tf.scalar(1)));
  }
  const maskVars = [...masks.values()];
  const bwdMasks = await time('forward+backward (masks)', async () => {
    const { value, grads } = tf.variableGrads(() => nextTokenLoss(frozen, batch, targets, masks), maskVars);
    await value.data();
    tf.dispose([value, ...Object.values(grads)]);
  });
  frozen.dispose();

  // Training setting: every parameter a Variable.
  const trainable = createTfModel(model.config, model.weights, { trainable: true });
  const bwdTrain = await time('forward+backward (all parameters)', async () => {
    const { value, grads } = tf.variableGrads(() => nextTokenLoss(trainable, batch, targets), trainable.variables);
    await value.data();
    tf.dispose([value, ...Object.values(grads)]);
  });
  trainable.dispose();
  tf.dispose([targets, ...maskVars]);
  return {
    model: model.dir.split('/').pop() as string,
    forward: rate(tokens, fwd),
    forwardMatmulAttn: rate(tokens, fwdMatmul),
    backwardMasks: rate(tokens, bwdMasks),
    backwardTrain: rate(tokens, bwdTrain),
    peakForwardMB,
    peakMB: process.resourceUsage().maxRSS / 1024,
  };
}

async function main(): Promise<void> {
  const oneIdx = process.argv.indexOf('--one');
  if (oneIdx >= 0) {
    process.stdout.write(`${JSON.stringify(await one(process.argv[oneIdx + 1]))}\n`);
    return;
  }
  const root = resolve(process.cwd(), '..', 'shared', 'models');
  const results: Result[] = [];
  console.log(`forward pass, batch ${BATCH} x length ${LENGTH}, tfjs ${tf.version.tfjs}, backend wasm (median of ${REPS})`);
  for (const name of MODELS) {
    const dir = join(root, name);
    if (!existsSync(join(dir, 'model.safetensors'))) {
      console.log(`skipped ${name}: ${dir} not found (the checkpoints live in ../shared/models)`);
      continue;
    }
    process.stderr.write(`${name}\n`);
    const r = spawnSync(process.execPath, [process.argv[1], '--one', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (r.status !== 0) throw new Error(`benchmark of ${name} failed (exit ${r.status ?? r.signal})`);
    results.push(JSON.parse(r.stdout.trim().split('\n').pop() as string) as Result);
  }
  if (results.length === 0) return;
  const k = (r: Rate): string => `${(r.wall / 1000).toFixed(1)}k / ${(r.cpu / 1000).toFixed(1)}k`;
  console.log('\ntokens per second by wall-clock / by CPU time:');
  console.log('| model | forward | forward, matMul attention | fwd+bwd (masks) | fwd+bwd (all params) | peak RSS MB (forward / all) |');
  console.log('|---|---|---|---|---|---|');
  for (const r of results) {
    console.log(
      `| ${r.model} | ${k(r.forward)} | ${k(r.forwardMatmulAttn)} | ${k(r.backwardMasks)} | ${k(r.backwardTrain)} | ${r.peakForwardMB.toFixed(0)} / ${r.peakMB.toFixed(0)} |`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(2);
});
