// Decisions and the scoring rules of tasks-and-models.md 1.5: per-sequence, all-or-nothing, teacher-forced.
// CE: argmax over the whole vocabulary at each scored position. BCE: logit > 0 for every vocab entry (special
// tokens included) at <bos> and each symbol position, the <eos> position excluded.
import { UserError } from '../util/errors';
import type { Task } from './types';

/** Logits of one sequence: row-major n x V. */
type Logits = Float32Array | Float64Array;

export type Decisions =
  | { objective: 'ce'; /** argmax id per position */ ids: Int32Array }
  | { objective: 'bce'; vocabSize: number; /** n x V bits, 1 where logit > 0 */ bits: Uint8Array };

function checkShape(task: Task, logits: Logits, n: number): void {
  if (logits.length < n * task.vocab.length) {
    throw new UserError(
      `logits for task ${task.name} hold ${logits.length} values; ${n} positions x ${task.vocab.length} tokens are needed`,
    );
  }
}

/** Index of the largest entry of row `row` (the first one on ties, as torch.argmax). */
export function argmaxRow(logits: Logits, row: number, V: number): number {
  const base = row * V;
  let best = 0;
  let bestValue = logits[base];
  for (let j = 1; j < V; j++) {
    const v = logits[base + j];
    if (v > bestValue) {
      bestValue = v;
      best = j;
    }
  }
  return best;
}

/** The model's decisions at the first n positions. */
export function decisions(task: Task, logits: Logits, n: number): Decisions {
  checkShape(task, logits, n);
  const V = task.vocab.length;
  if (task.objective === 'ce') {
    const ids = new Int32Array(n);
    for (let i = 0; i < n; i++) ids[i] = argmaxRow(logits, i, V);
    return { objective: 'ce', ids };
  }
  const bits = new Uint8Array(n * V);
  for (let k = 0; k < n * V; k++) bits[k] = logits[k] > 0 ? 1 : 0;
  return { objective: 'bce', vocabSize: V, bits };
}

function rowBitsEqual(a: Logits, b: Logits, row: number, V: number): boolean {
  for (let j = row * V; j < (row + 1) * V; j++) if (a[j] > 0 !== b[j] > 0) return false;
  return true;
}

/** Teacher-forced exact match of the model's logits for `seq` against the task's oracle. */
export function sequenceCorrect(task: Task, seq: readonly number[], logits: Logits): boolean {
  const labels = task.labels(seq);
  checkShape(task, logits, labels.positions.length === 0 ? 0 : labels.positions[labels.positions.length - 1] + 1);
  const V = task.vocab.length;
  if (labels.objective === 'ce') {
    return labels.positions.every((p, i) => argmaxRow(logits, p, V) === labels.tokens[i]);
  }
  return labels.positions.every((p, i) => {
    const row = labels.rows[i];
    for (let j = 0; j < V; j++) if ((logits[p * V + j] > 0 ? 1 : 0) !== row[j]) return false;
    return true;
  });
}

/** Scored positions where two models' (or a program's and a model's) decisions differ on `seq`. */
export function mismatchPositions(task: Task, seq: readonly number[], logitsA: Logits, logitsB: Logits): number[] {
  const positions = task.scoredPositions(seq);
  const n = positions.length === 0 ? 0 : positions[positions.length - 1] + 1;
  checkShape(task, logitsA, n);
  checkShape(task, logitsB, n);
  const V = task.vocab.length;
  return positions.filter((p) =>
    task.objective === 'ce' ? argmaxRow(logitsA, p, V) !== argmaxRow(logitsB, p, V) : !rowBitsEqual(logitsA, logitsB, p, V),
  );
}

/** Match accuracy rule: the same all-or-nothing test as sequenceCorrect, against another model's decisions. */
export function sequenceMatches(task: Task, seq: readonly number[], logitsA: Logits, logitsB: Logits): boolean {
  return mismatchPositions(task, seq, logitsA, logitsB).length === 0;
}
