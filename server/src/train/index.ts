// `rasp train`: trains a GPT-2 on a task with the paper's recipe (tasks-and-models.md 4.2): AdamW (0.9, 0.999,
// eps 1e-8, weight decay 0.01), grad-norm clipping 1.0, linear decay to 0 without warmup, batch 64, training
// lengths 0-50 with random position offsets, CE on the answer tokens or BCE on the allowed-next sets, evaluation
// every few hundred steps and early stopping once the 0-50 accuracy is exactly 1.0. The checkpoint is assembled
// in a hidden sibling folder and renamed into place at the end, so a cancelled or killed run leaves nothing behind.
import * as tf from '@tensorflow/tfjs';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '../model/atomic';
import { initBackend } from '../model/backend';
import { createTfModel, forward, makeBatch, tfModelWeights, type TfModel } from '../model/forward';
import { saveModel } from '../model/load';
import type { Gpt2Config, ModelCard } from '../model/types';
import { evaluateTask, type BinAccuracy } from '../tasks/evaluate';
import { DEFAULT_BINS, getTask } from '../tasks/index';
import type { Task } from '../tasks/types';
import { CancelledError, UserError } from '../util/errors';
import { Rng, deriveSeed } from '../util/rng';
import { AdamW, PAPER_ADAMW, linearLr } from './adamw';
import { makeTrainBatch, type TrainBatch } from './batch';
import { initWeights } from './init';
import { registerFastTileGradient } from './tileGrad';

export interface TrainOptions {
  task: string;
  layers: number;
  heads: number;
  width: number;
  /** Output folder (must not exist or be empty, unless `force`). */
  out: string;
  force?: boolean;
  /** Maximum optimisation steps; the learning rate decays linearly to 0 over them (paper: 30000). */
  steps?: number;
  lr?: number;
  batch?: number;
  seed?: number;
  dropout?: number;
  /** Training length range (paper: 0-50). */
  lengths?: [number, number];
  /** Evaluate on the training range every this many steps (early stop at accuracy 1.0). */
  evalEvery?: number;
  evalSamples?: number;
  /** Stop (and save) after this many seconds even if the steps are not done. */
  maxSeconds?: number;
  /** Bins and samples per bin of the final evaluation recorded in the card. */
  finalBins?: [number, number][];
  finalSamples?: number;
}

export interface TrainProgress {
  phase: 'train' | 'eval' | 'final-eval' | 'save';
  step: number;
  steps: number;
  loss: number;
  /** Latest accuracy on the training range (NaN before the first evaluation). */
  accuracy: number;
  lr: number;
  seconds: number;
}

export interface TrainResult {
  out: string;
  task: string;
  steps: number;
  stoppedBy: 'accuracy' | 'steps' | 'time';
  seconds: number;
  stepsPerSecond: number;
  loss: number;
  trainAccuracy: number;
  bins: BinAccuracy[];
  sha256: string;
}

function positiveInt(name: string, v: number | undefined, fallback: number, max = 1e9): number {
  const x = v ?? fallback;
  if (!Number.isInteger(x) || x < 1 || x > max) throw new UserError(`--${name} must be an integer from 1 to ${max}, got ${x}`);
  return x;
}

export function configForTask(task: Task, layers: number, heads: number, width: number): Gpt2Config {
  if (width % heads !== 0) throw new UserError(`--width ${width} must be divisible by --heads ${heads}`);
  return {
    architecture: task.objective === 'bce' ? 'GPT2BCELMHeadModel' : 'GPT2LMHeadModel',
    nLayer: layers,
    nHead: heads,
    nEmbd: width,
    nPositions: task.nPositions,
    vocabSize: task.vocab.length,
    activation: 'gelu_new',
    lnEps: 1e-5,
    bosId: task.special.bos,
    eosId: task.special.eos,
    padId: task.special.pad,
  };
}

function lossOf(task: Task, tm: TfModel, tb: TrainBatch, dropout: number, seed: number): tf.Scalar {
  const { B, T } = tb.batch;
  const V = tm.config.vocabSize;
  const out = forward(tm, tb.batch, dropout > 0 ? { dropout: { rate: dropout, seed } } : {});
  const logits = tf.reshape(out.logits, [B * T, V]) as tf.Tensor2D;
  const mask = tf.tensor1d(tb.mask);
  const count = Math.max(1, tb.mask.reduce((s, x) => s + x, 0));
  if (task.objective === 'ce') {
    // Mean next-token cross-entropy over the scored targets (labels already shifted onto the predicting position).
    const picked = tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(tf.tensor1d(tb.targets!, 'int32'), V).toFloat()), -1);
    return tf.div(tf.neg(tf.sum(tf.mul(picked, mask))), count) as tf.Scalar;
  }
  // BCE with logits, stable form max(x,0) - x y + log(1 + exp(-|x|)), averaged over every vocab entry of the
  // positions whose input is neither <pad> nor <eos>.
  const y = tf.tensor2d(tb.labels!, [B * T, V]);
  const per = tf.add(tf.sub(tf.relu(logits), tf.mul(logits, y)), tf.log1p(tf.exp(tf.neg(tf.abs(logits)))));
  return tf.div(tf.sum(tf.mul(per, tf.reshape(mask, [B * T, 1]))), count * V) as tf.Scalar;
}

/** Logits per sequence (positions from 0) from the model being trained. */
async function trainingLogits(tm: TfModel, seqs: number[][], pad: number): Promise<Float32Array[]> {
  const batch = makeBatch(tm.config, seqs, { padId: pad });
  const logits = tf.tidy(() => forward(tm, batch).logits);
  const data = (await logits.data()) as Float32Array;
  logits.dispose();
  const V = tm.config.vocabSize;
  return seqs.map((s, b) => data.slice(b * batch.T * V, (b * batch.T + s.length) * V));
}

/** HF's Trainer decays every weight matrix and embedding, but no bias or LayerNorm parameter. */
function decayFlags(tm: TfModel): { v: tf.Variable; decay: boolean }[] {
  const p = tm.params;
  const decayed = new Set<tf.Tensor>([p.wte, p.wpe, ...p.blocks.flatMap((b) => [b.cAttnW, b.cProjW, b.fcW, b.projW])]);
  return tm.variables.map((v) => ({ v, decay: decayed.has(v) }));
}

async function checkOut(out: string, force: boolean): Promise<void> {
  const st = await stat(out).catch(() => undefined);
  if (!st) return;
  if (!st.isDirectory()) throw new UserError('exists and is not a folder', out);
  const entries = await readdir(out);
  if (entries.length > 0 && !force) throw new UserError('already exists and is not empty; use --force to replace it', out);
}

/** Trains and writes the checkpoint. Throws CancelledError (leaving no output) when `signal` aborts. */
export async function trainModel(
  options: TrainOptions,
  hooks: { signal?: AbortSignal; onProgress?: (p: TrainProgress) => void } = {},
): Promise<TrainResult> {
  const task = getTask(options.task);
  const layers = positiveInt('layers', options.layers, 1, 64);
  const heads = positiveInt('heads', options.heads, 1, 64);
  const width = positiveInt('width', options.width, 16, 4096);
  const steps = positiveInt('steps', options.steps, 30000);
  const batchSize = positiveInt('batch', options.batch, 64, 4096);
  const evalEvery = positiveInt('eval-every', options.evalEvery, 250);
  const evalSamples = positiveInt('eval-samples', options.evalSamples, 200);
  const finalSamples = positiveInt('final-samples', options.finalSamples, 200);
  const lr = options.lr ?? 1e-3;
  if (!(lr > 0 && lr < 1)) throw new UserError(`--lr must be in (0, 1), got ${lr}`);
  const dropout = options.dropout ?? 0;
  if (!(dropout >= 0 && dropout < 1)) throw new UserError(`--dropout must be in [0, 1), got ${dropout}`);
  const seed = options.seed ?? 0;
  const lengths = options.lengths ?? [0, 50];
  const config = configForTask(task, layers, heads, width);
  const out = resolve(options.out);
  await checkOut(out, options.force ?? false);
  task.drawLength(lengths[0], lengths[1], new Rng(0)); // a UserError now if the range holds no valid length

  await initBackend();
  registerFastTileGradient();
  const rng = new Rng(seed);
  const tm = createTfModel(config, initWeights(config, new Rng(deriveSeed(seed, 1))), { trainable: true });
  const vars = tm.variables;
  const opt = new AdamW(decayFlags(tm), { lr, ...PAPER_ADAMW });
  const started = Date.now();
  const seconds = (): number => (Date.now() - started) / 1000;
  let loss = NaN;
  let accuracy = NaN;
  let step = 0;
  let stoppedBy: TrainResult['stoppedBy'] = 'steps';
  const report = (phase: TrainProgress['phase']): void =>
    hooks.onProgress?.({ phase, step, steps, loss, accuracy, lr: linearLr(lr, step, steps), seconds: seconds() });
  const logitsFn = (b: number[][]) => trainingLogits(tm, b, task.special.pad);
  const evalTrainRange = async (): Promise<number> => {
    report('eval');
    const r = await evaluateTask(task, logitsFn, { bins: [lengths], samples: evalSamples, seed: deriveSeed(seed, 2, step), signal: hooks.signal });
    return r.bins[0].accuracy;
  };
  try {
    while (step < steps) {
      if (hooks.signal?.aborted) throw new CancelledError();
      const batch = makeTrainBatch(config, task, batchSize, lengths, rng);
      const stepLr = linearLr(lr, step, steps);
      const dropSeed = rng.uint32();
      loss = tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => lossOf(task, tm, batch, dropout, dropSeed), vars);
        opt.step(vars.map((v) => grads[v.name]), stepLr);
        return value.dataSync()[0];
      });
      if (!Number.isFinite(loss)) throw new UserError(`training diverged at step ${step + 1} (loss ${loss}); try a smaller --lr`);
      step++;
      report('train');
      // Let Ctrl-C and other events through between steps.
      await new Promise<void>((r) => setImmediate(r));
      const outOfTime = options.maxSeconds !== undefined && seconds() >= options.maxSeconds;
      if (step % evalEvery === 0 || step === steps || outOfTime) {
        accuracy = await evalTrainRange();
        if (accuracy === 1) {
          stoppedBy = 'accuracy';
          break;
        }
      }
      if (outOfTime) {
        stoppedBy = 'time';
        break;
      }
    }
    const trainSeconds = seconds();
    report('final-eval');
    const finalBins = options.finalBins ?? DEFAULT_BINS;
    const final = await evaluateTask(task, logitsFn, { bins: finalBins, samples: finalSamples, seed: deriveSeed(seed, 3), signal: hooks.signal });
    if (hooks.signal?.aborted) throw new CancelledError();
    report('save');
    const weights = await tfModelWeights(tm);
    const card: ModelCard = {
      task: task.name,
      objective: task.objective,
      vocab: [...task.vocab],
      reportedAccuracy: final.bins.map((b) => ({ lengths: b.lengths, accuracy: b.accuracy })),
      source: 'card',
    };
    const record = {
      task: task.name,
      architecture: { layers, heads, width },
      recipe: {
        steps,
        lr,
        batch: batchSize,
        seed,
        dropout,
        lengths,
        optimizer: 'adamw',
        ...PAPER_ADAMW,
        schedule: 'linear',
        randomPositionOffsets: true,
        evalEvery,
        evalSamples,
        ...(options.maxSeconds === undefined ? {} : { maxSeconds: options.maxSeconds }),
      },
      stoppedBy,
      stepsRun: step,
      trainSeconds: Math.round(trainSeconds * 10) / 10,
      finalLoss: loss,
      trainRangeAccuracy: accuracy,
      eval: final.bins.map((b) => ({ lengths: b.lengths, accuracy: b.accuracy, samples: b.samples })),
    };
    const sha256 = await writeCheckpoint(out, options.force ?? false, async (dir) => {
      const hash = await saveModel(dir, config, weights, card, { dropout });
      await writeFileAtomic(join(dir, 'acc.txt'), new TextEncoder().encode(accTxt(layers, heads, width, lr, dropout, final.bins)));
      await writeFileAtomic(join(dir, 'training.json'), new TextEncoder().encode(`${JSON.stringify(record, null, 2)}\n`));
      return hash;
    });
    return {
      out,
      task: task.name,
      steps: step,
      stoppedBy,
      seconds: trainSeconds,
      stepsPerSecond: step / Math.max(1e-9, trainSeconds),
      loss,
      trainAccuracy: accuracy,
      bins: final.bins,
      sha256,
    };
  } finally {
    opt.dispose();
    tm.dispose();
  }
}

/** The paper's acc.txt line (architecture, then eval_len<lo>-<hi>_acc: x per bin). */
function accTxt(layers: number, heads: number, width: number, lr: number, dropout: number, bins: BinAccuracy[]): string {
  const lrCode = Math.round(-Math.log10(lr));
  const arch = `${layers}l${heads}h${width}d${lrCode}lr${String(Math.round(dropout * 10)).padStart(2, '0')}drop`;
  return `${arch}\t\t ${bins.map((b) => `eval_len${b.lengths[0]}-${b.lengths[1]}_acc: ${b.accuracy}`).join('\t\t')}\n`;
}

/** Fills a hidden sibling folder and renames it to `out`; on any failure the sibling is removed. */
async function writeCheckpoint(out: string, force: boolean, fill: (dir: string) => Promise<string>): Promise<string> {
  const parent = dirname(out);
  await mkdir(parent, { recursive: true });
  const tmp = join(parent, `.${basename(out)}.${process.pid}.${randomBytes(4).toString('hex')}.partial`);
  const old = join(parent, `.${basename(out)}.${process.pid}.${randomBytes(4).toString('hex')}.old`);
  let moved = false;
  try {
    await mkdir(tmp);
    const hash = await fill(tmp);
    await checkOut(out, force); // it may have appeared while training
    if (await stat(out).catch(() => undefined)) {
      await rename(out, old);
      moved = true;
    }
    await rename(tmp, out);
    if (moved) await rm(old, { recursive: true, force: true });
    return hash;
  } catch (err) {
    if (moved) await rename(old, out).catch(() => undefined);
    throw err;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
