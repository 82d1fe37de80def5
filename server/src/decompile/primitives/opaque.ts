// Exact evaluation of an opaque MLP line on collected input values (types.ts OpaqueMlp, d-rasp.md 6), keeping the
// hidden activations for the neuron attribution. The interpreter's own kernel computes it, so the fits see the
// very numbers the program computes.
import { applyMlp } from '../../interpreter/elementwise';
import type { OpaqueMlp } from '../../program/types';
import type { Dense } from './linalg';

export interface MlpRun {
  /** rows x 4d hidden activations after gelu_new. */
  hidden: Dense;
  /** rows x d output in the residual basis. */
  output: Dense;
}

/** Runs the MLP on rows of its inputs; `inputs[k]` is rows x basis(x_k) (one row per collected position). */
export function runOpaqueMlp(mlp: OpaqueMlp, inputs: Dense[]): MlpRun {
  if (inputs.length !== mlp.inputEmbeddings.length) throw new Error('runOpaqueMlp: input count mismatch');
  const rows = inputs[0]?.rows ?? 0;
  const hiddenSize = mlp.fcW.cols;
  const hidden = new Float64Array(rows * hiddenSize);
  const output = applyMlp(
    mlp,
    inputs.map((x) => ({ basis: { kind: 'feature', size: x.cols, labels: [] }, data: x.data })),
    rows,
    hidden,
  );
  return { hidden: { rows, cols: hiddenSize, data: hidden }, output: { rows, cols: mlp.projW.cols, data: output } };
}
