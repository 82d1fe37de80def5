// Accuracy per length bin (tasks-and-models.md 1.5): fresh samples from the task's generator, the model's
// logits from any batched forward (`LogitsFn`), teacher-forced all-or-nothing scoring against the oracle.
import { CancelledError } from '../util/errors';
import { sampleBins } from './index';
import { sequenceCorrect } from './score';
import type { Task } from './types';

/** Logits for a batch of sequences: one row-major (length x V) array per sequence, in order. */
export type LogitsFn = (batch: number[][]) => Promise<(Float32Array | Float64Array)[]>;

export interface EvalOptions {
  bins: [number, number][];
  /** Samples per bin. */
  samples: number;
  seed: number;
  /** Token budget of one forward batch (sequences x padded length); default 8192. */
  batchTokens?: number;
  /** Most sequences in one batch; default 64. */
  maxBatch?: number;
  signal?: AbortSignal;
  onProgress?: (p: { done: number; total: number; bin: number }) => void;
}

export interface BinAccuracy {
  lengths: [number, number];
  accuracy: number;
  samples: number;
  correct: number;
}

export interface EvalResult {
  task: string;
  bins: BinAccuracy[];
}

/** Splits sequences into batches of similar length (sorted), so padding costs little. Returns index groups. */
export function lengthBatches(seqs: readonly number[][], batchTokens: number, maxBatch: number): number[][] {
  const order = seqs.map((_, i) => i).sort((a, b) => seqs[a].length - seqs[b].length);
  const groups: number[][] = [];
  let group: number[] = [];
  for (const i of order) {
    const width = seqs[i].length; // sorted: the newest member is the longest
    if (group.length > 0 && ((group.length + 1) * width > batchTokens || group.length >= maxBatch)) {
      groups.push(group);
      group = [];
    }
    group.push(i);
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

export async function evaluateTask(task: Task, logits: LogitsFn, options: EvalOptions): Promise<EvalResult> {
  const samples = sampleBins(task, options.bins, options.samples, options.seed);
  const total = samples.reduce((s, b) => s + b.length, 0);
  let done = 0;
  const bins: BinAccuracy[] = [];
  for (let b = 0; b < samples.length; b++) {
    const seqs = samples[b];
    let correct = 0;
    for (const group of lengthBatches(seqs, options.batchTokens ?? 8192, options.maxBatch ?? 64)) {
      if (options.signal?.aborted) throw new CancelledError();
      const batch = group.map((i) => seqs[i]);
      const out = await logits(batch);
      batch.forEach((seq, k) => {
        if (sequenceCorrect(task, seq, out[k])) correct++;
      });
      done += batch.length;
      options.onProgress?.({ done, total, bin: b });
    }
    bins.push({ lengths: options.bins[b], accuracy: seqs.length ? correct / seqs.length : 0, samples: seqs.length, correct });
  }
  return { task: task.name, bins };
}
