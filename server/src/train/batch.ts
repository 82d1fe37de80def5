// Training batches as the paper builds them (tasks-and-models.md 1.2-1.4): lengths drawn from the training range,
// a random position offset per example, right padding, and the loss targets of the task's objective.
import { makeBatch as padBatch, type Batch } from '../model/forward';
import type { Gpt2Config } from '../model/types';
import type { Task } from '../tasks/types';
import type { Rng } from '../util/rng';

export interface TrainBatch {
  /** Right-padded ids and position ids for the forward pass. */
  batch: Batch;
  /** [B*T]: 1 where the position's prediction enters the loss. */
  mask: Float32Array;
  /** CE: [B*T] target id (0 where masked). */
  targets?: Int32Array;
  /** BCE: [B*T*V] multi-hot labels (0 where masked). */
  labels?: Float32Array;
}

/**
 * A random batch. Offsets are uniform in [0, nPositions - length], so every position embedding row gets trained
 * (the original left the last row untrained for bin_majority/majority/parity by one; here all tasks use the full range).
 */
export function makeTrainBatch(config: Gpt2Config, task: Task, size: number, lengths: [number, number], rng: Rng, randomOffsets = true): TrainBatch {
  const seqs: number[][] = [];
  const offsets: number[] = [];
  for (let i = 0; i < size; i++) {
    const seq = task.generate(task.drawLength(lengths[0], lengths[1], rng), rng);
    seqs.push(seq);
    offsets.push(randomOffsets ? rng.int(0, task.maxOffset(seq.length)) : 0);
  }
  const batch = padBatch(config, seqs, { offset: offsets, padId: task.special.pad });
  const T = batch.T;
  const V = task.vocab.length;
  const mask = new Float32Array(size * T);
  const out: TrainBatch = { batch, mask };
  if (task.objective === 'ce') {
    const targets = new Int32Array(size * T);
    seqs.forEach((seq, b) => {
      const l = task.labels(seq);
      if (l.objective !== 'ce') return;
      l.positions.forEach((p, i) => {
        mask[b * T + p] = 1;
        targets[b * T + p] = l.tokens[i];
      });
    });
    out.targets = targets;
  } else {
    const labels = new Float32Array(size * T * V);
    seqs.forEach((seq, b) => {
      const l = task.labels(seq);
      if (l.objective !== 'bce') return;
      l.positions.forEach((p, i) => {
        mask[b * T + p] = 1;
        labels.set(l.rows[i], (b * T + p) * V);
      });
    });
    out.labels = labels;
  }
  return out;
}
