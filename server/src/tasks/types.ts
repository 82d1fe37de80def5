// The contract of a task from the paper's suite (tasks-and-models.md sections 1-3): vocabulary, layout,
// length rules, the generator of random valid inputs, the oracle and what is scored.
import type { Objective } from '../model/types';
import type { Rng } from '../util/rng';

/** Special token ids; every task has all four, right after its normal symbols (bos, sep, eos, pad). */
export interface TaskSpecial {
  bos: number;
  sep: number;
  eos: number;
  pad: number;
}

/**
 * Gold labels of one sequence, at the positions whose prediction is scored.
 * CE: `tokens[i]` is the token the argmax at `positions[i]` must produce (labels shifted by one).
 * BCE: `rows[i]` is the multi-hot allowed-next vector (length = vocab size, special bits included) that the
 * thresholded logits at `positions[i]` must equal (labels not shifted).
 */
export type TaskLabels =
  | { objective: 'ce'; positions: number[]; tokens: number[] }
  | { objective: 'bce'; positions: number[]; rows: Uint8Array[] };

export interface Task {
  readonly name: string;
  readonly objective: Objective;
  /** One line for help texts and model cards. */
  readonly description: string;
  /** Token strings in id order: normal symbols, then <bos>, <sep>, <eos>, <pad>. */
  readonly vocab: readonly string[];
  readonly special: TaskSpecial;
  /** Number of learned position embeddings the paper's models have for this task. */
  readonly nPositions: number;
  /** Smallest and largest valid length n (what the eval bins count; see `lengthMeaning`). */
  readonly minLength: number;
  readonly maxLength: number;
  /** What the length n counts, e.g. "input bits" or "string length". */
  readonly lengthMeaning: string;
  /** Whether inputs of length n exist and fit into the position embeddings. */
  validLength(n: number): boolean;
  /**
   * A length for a sample from the inclusive range [lo, hi], distributed as in the paper's data (uniform over
   * the valid lengths, except bin_majority_interleave's rounding to whole periods). Throws `UserError` when the
   * range holds no valid length.
   */
  drawLength(lo: number, hi: number, rng: Rng): number;
  /** A whole sequence of ids for a random valid input of length n: `<bos> prompt <sep> answer [<eos>]` (CE) or `<bos> string <eos>` (BCE). */
  generate(n: number, rng: Rng): number[];
  /** Positions (rows of the logits) whose prediction is scored. */
  scoredPositions(seq: readonly number[]): number[];
  /** The oracle's labels at the scored positions, computed from the input part of `seq` (never from its answer). */
  labels(seq: readonly number[]): TaskLabels;
  /** Largest position-id offset for training on `seq` (so the last position stays below nPositions). */
  maxOffset(seqLength: number): number;
  /** Length n of a generated sequence (inverse of generate's layout). */
  lengthOf(seq: readonly number[]): number;
}
