// Exact evaluation of an opaque MLP line on collected input values (types.ts OpaqueMlp, d-rasp.md 6), keeping the
// hidden activations, which the interpreter's applyMlp does not expose: the neuron attribution needs them.
import type { OpaqueMlp } from '../../program/types';
import { geluNew } from '../../interpreter/elementwise';
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
  const dIn = mlp.fcW.rows;
  const hiddenSize = mlp.fcW.cols;
  const d = mlp.projW.cols;
  const hidden = new Float64Array(rows * hiddenSize);
  const output = new Float64Array(rows * d);
  const resid = new Float64Array(dIn);
  const scale = 1 / Math.sqrt(mlp.lnVariance + mlp.lnEps);
  for (let r = 0; r < rows; r++) {
    resid.fill(0);
    if (mlp.constant) for (let c = 0; c < dIn; c++) resid[c] = mlp.constant[c];
    inputs.forEach((x, k) => {
      const e = mlp.inputEmbeddings[k];
      for (let b = 0; b < x.cols; b++) {
        const v = x.data[r * x.cols + b];
        if (v === 0) continue;
        for (let c = 0; c < dIn; c++) resid[c] += v * e.data[b * dIn + c];
      }
    });
    let mean = 0;
    for (let c = 0; c < dIn; c++) mean += resid[c];
    mean /= dIn;
    for (let c = 0; c < dIn; c++) resid[c] = (resid[c] - mean) * mlp.lnGamma[c] * scale;
    const ho = r * hiddenSize;
    for (let j = 0; j < hiddenSize; j++) hidden[ho + j] = mlp.fcB[j];
    for (let c = 0; c < dIn; c++) {
      const v = resid[c];
      if (v === 0) continue;
      for (let j = 0; j < hiddenSize; j++) hidden[ho + j] += v * mlp.fcW.data[c * hiddenSize + j];
    }
    const oo = r * d;
    for (let c = 0; c < d; c++) output[oo + c] = mlp.projB[c];
    for (let j = 0; j < hiddenSize; j++) {
      const a = geluNew(hidden[ho + j]);
      hidden[ho + j] = a;
      if (a === 0) continue;
      for (let c = 0; c < d; c++) output[oo + c] += a * mlp.projW.data[j * d + c];
    }
  }
  return { hidden: { rows, cols: hiddenSize, data: hidden }, output: { rows, cols: d, data: output } };
}
