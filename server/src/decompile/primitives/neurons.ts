// Neuron-level provenance (beyond the paper): which hidden units of an MLP carry a line. The score of unit j is its
// share of the output variance, var(a_j) · |W_proj[j]|², measured on the collected inputs: a unit whose activation
// never changes only adds a constant (a bias) and carries no information, however large it is. The kept set is
// the smallest prefix (by score) covering `coverage` of the total, and it is checked by ablation: with every other
// unit frozen at its mean, how much of the output variance is left unexplained.
import type { NeuronRef, OpaqueMlp } from '../../program/types';
import { type Dense, fromMatrix, fvu, matmul } from './linalg';
import { type MlpRun, runOpaqueMlp } from './opaque';

export interface NeuronAttribution {
  neurons: NeuronRef[];
  /** FVU of the MLP output when only the kept neurons vary (others at their mean); small = they carry the line. */
  keptFvu: number;
  /** Share of the output variance the kept neurons account for (sum of their scores). */
  coverage: number;
}

export interface NeuronOptions {
  /** Cumulative share of the output variance to cover (default 0.9). */
  coverage?: number;
  /** At most this many neurons are listed (default 16). */
  maxNeurons?: number;
}

/** `inputs`: the MLP's input rows, or the MLP already run on them (runOpaqueMlp). */
export function attributeNeurons(mlp: OpaqueMlp, inputs: Dense[] | MlpRun, options: NeuronOptions = {}): NeuronAttribution {
  const want = options.coverage ?? 0.9;
  const maxNeurons = options.maxNeurons ?? 16;
  const run = Array.isArray(inputs) ? runOpaqueMlp(mlp, inputs) : inputs;
  const { hidden } = run;
  const rows = hidden.rows;
  const h = hidden.cols;
  const d = mlp.projW.cols;
  const mean = new Float64Array(h);
  const variance = new Float64Array(h);
  for (let r = 0; r < rows; r++) for (let j = 0; j < h; j++) mean[j] += hidden.data[r * h + j];
  for (let j = 0; j < h; j++) mean[j] /= Math.max(rows, 1);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < h; j++) {
      const e = hidden.data[r * h + j] - mean[j];
      variance[j] += e * e;
    }
  }
  const contrib = new Float64Array(h);
  let total = 0;
  for (let j = 0; j < h; j++) {
    let w2 = 0;
    for (let c = 0; c < d; c++) w2 += mlp.projW.data[j * d + c] ** 2;
    contrib[j] = (variance[j] / Math.max(rows, 1)) * w2;
    total += contrib[j];
  }
  const order = [...contrib.keys()].sort((a, b) => contrib[b] - contrib[a]);
  const neurons: NeuronRef[] = [];
  let covered = 0;
  for (const j of order) {
    if (neurons.length >= maxNeurons || (neurons.length > 0 && covered >= want) || contrib[j] <= 0) break;
    const score = total > 0 ? contrib[j] / total : 0;
    neurons.push({ index: j, score: Math.round(score * 1e4) / 1e4 });
    covered += score;
  }
  // Ablation check: rebuild the output from the kept units' activations and everyone else's mean (c_proj's bias
  // first, then the units in order: the plain sum).
  const kept = new Uint8Array(h);
  for (const n of neurons) kept[n.index] = 1;
  const ablated = new Float64Array(rows * h);
  for (let r = 0; r < rows; r++) for (let j = 0; j < h; j++) ablated[r * h + j] = kept[j] ? hidden.data[r * h + j] : mean[j];
  const approx = matmul({ rows, cols: h, data: ablated }, fromMatrix(mlp.projW), mlp.projB).data;
  return { neurons, keptFvu: fvu({ rows, cols: d, data: approx }, run.output), coverage: covered };
}

/** A listed neuron with what drives it: its pre-activation weight on each entry of each input variable. */
export interface NeuronDetail {
  index: number;
  score?: number;
  /** c_fc bias of the unit. */
  bias: number;
  /** Per input variable, the entries with the largest input weight (label, signed weight through the layer norm). */
  inputs: { input: string; top: { label: string; weight: number }[] }[];
  /** Norm of the unit's output (c_proj) row. */
  outputNorm: number;
}

/**
 * Input weights of hidden unit j in the basis of each input variable: w_b = ((E_k[b] - mean(E_k[b])) ∘ γ / σ) · fcW[:, j],
 * i.e. how much one unit of entry b (one token, one position, ...) moves the unit's pre-activation.
 */
export function neuronDetails(
  mlp: OpaqueMlp,
  neurons: readonly NeuronRef[],
  inputNames: readonly string[],
  inputLabels: readonly (readonly string[])[],
  top = 3,
): NeuronDetail[] {
  const dIn = mlp.fcW.rows;
  const h = mlp.fcW.cols;
  const d = mlp.projW.cols;
  const scale = 1 / Math.sqrt(mlp.lnVariance + mlp.lnEps);
  return neurons.map((n) => {
    const j = n.index;
    let norm = 0;
    for (let c = 0; c < d; c++) norm += mlp.projW.data[j * d + c] ** 2;
    const inputs = mlp.inputEmbeddings.map((e, k) => {
      const weights: { label: string; weight: number }[] = [];
      for (let b = 0; b < e.rows; b++) {
        let mean = 0;
        for (let c = 0; c < dIn; c++) mean += e.data[b * dIn + c];
        mean /= dIn;
        let w = 0;
        for (let c = 0; c < dIn; c++) w += (e.data[b * dIn + c] - mean) * mlp.lnGamma[c] * scale * mlp.fcW.data[c * h + j];
        weights.push({ label: inputLabels[k]?.[b] ?? String(b), weight: Math.round(w * 1000) / 1000 });
      }
      weights.sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight));
      return { input: inputNames[k] ?? String(k), top: weights.slice(0, top) };
    });
    return { index: j, ...(n.score !== undefined ? { score: n.score } : {}), bias: mlp.fcB[j], inputs, outputNorm: Math.sqrt(norm) };
  });
}
