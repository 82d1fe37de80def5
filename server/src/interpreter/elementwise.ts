// Element-wise primitives of d-rasp.md 5.1, applied per position, and the exact opaque-MLP computation.
// Inputs and outputs are row-major n x size Float64Arrays.
import type { Basis, ElementwiseFn, OpaqueMlp } from '../program/types';
import { COUNT_DIFF_RANGE, DIFF_EDGES } from '../program/bases';

export interface Rows {
  basis: Basis;
  data: Float64Array;
  /** Entry index per position when every row is exactly one-hot (lets consumers use lookups). */
  hot?: Int32Array;
}

/** gelu_new (GPT-2): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export function geluNew(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}

function argmax(data: Float64Array, off: number, size: number): number {
  let best = 0;
  for (let c = 1; c < size; c++) if (data[off + c] > data[off + best]) best = c;
  return best;
}

/** The bin of `d` among the 11 diff bins: edges[b] <= d < edges[b+1]; out-of-range values go to the end bins. */
export function diffBin(d: number): number {
  const last = DIFF_EDGES.length - 2;
  for (let b = 0; b < last; b++) if (d < DIFF_EDGES[b + 1]) return b;
  return last;
}

/** The count_diff bin of a (scaled) count difference: round(r) clamped to -R..R, shifted to 0..2R. */
export function countDiffBin(r: number): number {
  return Math.min(2 * COUNT_DIFF_RANGE, Math.max(0, Math.round(r) + COUNT_DIFF_RANGE));
}

/** Primitives of a single input (everything except erase/keep_one/cartesian/mlp/expr). */
export function applyUnary(fn: ElementwiseFn, x: Rows, out: Basis, n: number): Float64Array {
  const size = x.basis.size;
  const m = out.size;
  const y = new Float64Array(n * m);
  const xd = x.data;
  for (let i = 0; i < n; i++) {
    const xo = i * size;
    const yo = i * m;
    switch (fn.name) {
      case 'harden':
        y[yo + (x.hot ? x.hot[i] : argmax(xd, xo, size))] = 1;
        break;
      case 'sharpen': {
        // Negative entries (not expected in probability-like inputs) count as 0 so fractional powers stay real.
        let sum = 0;
        // With a positive power, entries <= 0 give 0: only the others need Math.pow.
        const skip = fn.power > 0;
        for (let c = 0; c < size; c++) {
          const e = xd[xo + c];
          if (skip && e <= 0) continue;
          const v = Math.pow(Math.max(0, e), fn.power);
          y[yo + c] = v;
          sum += v;
        }
        if (sum > 0) for (let c = 0; c < size; c++) y[yo + c] /= sum;
        break;
      }
      case 'exists': {
        const b = xd[xo + fn.index] > 0.1 ? 1 : 0;
        y[yo] = b;
        y[yo + 1] = 1 - b;
        break;
      }
      case 'forall': {
        let sum = 0;
        for (let c = 0; c < size; c++) {
          const b = xd[xo + c] > fn.threshold ? 1 : 0;
          y[yo + c] = b;
          sum += b;
        }
        y[yo + size] = 1 - sum;
        break;
      }
      case 'equal': {
        let lo = Infinity;
        let hi = -Infinity;
        for (const idx of fn.indices) {
          lo = Math.min(lo, xd[xo + idx]);
          hi = Math.max(hi, xd[xo + idx]);
        }
        const b = hi - lo < 0.01 ? 1 : 0;
        y[yo] = b;
        y[yo + 1] = 1 - b;
        break;
      }
      case 'balance': {
        const [lo, hi] = fn.which === '01' ? [0, 1] : [2, 3];
        const d = xd[xo + hi] - xd[xo + lo] - fn.c;
        const a = d > 0 ? Math.pow(d, fn.p) : 0;
        const b = d < 0 ? Math.pow(-d, fn.p) : 0;
        y[yo] = a;
        y[yo + 1] = b;
        y[yo + 2] = 1 - a - b;
        break;
      }
      case 'diff': {
        const xi = xd[xo + fn.i];
        const xj = xd[xo + fn.j];
        // Flag: too little mass on the two entries for their difference to mean anything; no bin fires.
        if (xi + xj < 0.2) y[yo + 11] = 1;
        else y[yo + diffBin(xi - xj)] = 1;
        break;
      }
      case 'count_diff': {
        // (x_i - x_j) / x_by: with a uniform select that counts BOS once, the count difference itself
        const ref = xd[xo + fn.by];
        if (!(ref > 1e-9)) y[yo + 2 * COUNT_DIFF_RANGE + 1] = 1;
        else y[yo + countDiffBin((fn.scale * (xd[xo + fn.i] - xd[xo + fn.j])) / ref)] = 1;
        break;
      }
      default:
        throw new Error(`applyUnary called with ${fn.name}`);
    }
  }
  return y;
}

/**
 * combine (Cartesian product): iterated outer product with element-wise min, flattened (last input fastest),
 * then renormalised to sum 1 per position. One-hot inputs give the one-hot of the tuple.
 */
export function applyCartesian(inputs: Rows[], out: Basis, n: number): Float64Array {
  const m = out.size;
  const y = new Float64Array(n * m);
  let acc = new Float64Array(m);
  let next = new Float64Array(m);
  const allHot = inputs.every((x) => x.hot);
  for (let i = 0; i < n; i++) {
    if (allHot) {
      let idx = 0;
      for (const x of inputs) idx = idx * x.basis.size + (x.hot as Int32Array)[i];
      y[i * m + idx] = 1;
      continue;
    }
    let len = 1;
    acc[0] = Infinity;
    for (const x of inputs) {
      const s = x.basis.size;
      const xo = i * s;
      for (let a = 0; a < len; a++) {
        for (let b = 0; b < s; b++) next[a * s + b] = Math.min(acc[a], x.data[xo + b]);
      }
      len *= s;
      [acc, next] = [next, acc];
    }
    let sum = 0;
    for (let c = 0; c < m; c++) sum += acc[c];
    const yo = i * m;
    if (sum !== 0) for (let c = 0; c < m; c++) y[yo + c] = acc[c] / sum;
  }
  return y;
}

/**
 * How an opaque MLP line is evaluated: `applyMlp` (exact, float64) unless a caller passes another, e.g. the primitives
 * stage's screening runs, which run it on the tensor backend in float32 like the model itself.
 */
export type MlpKernel = (mlp: OpaqueMlp, inputs: Rows[], n: number) => Float64Array;

/** Positions evaluated together by applyMlp: each weight is read once per block instead of once per position. */
const MLP_BLOCK = 4;

/**
 * The opaque MLP exactly (types.ts OpaqueMlp): input = sum_k x_k E_k + constant; linear layer norm with the fixed
 * variance; gelu_new(h fcW + fcB) projW + projB. Positions whose inputs are all one-hot with the same entries share
 * one evaluation. Positions go through the weights four at a time (the weights, d_model x 4·d_model twice, do not
 * stay in cache from one position to the next); every position's sums run in the same order as one at a time, so
 * the numbers do not depend on the blocking. `hidden` (n x 4·d_model), when given, receives the activations after
 * gelu_new (the primitives stage attributes the output to them).
 */
export function applyMlp(mlp: OpaqueMlp, inputs: Rows[], n: number, hidden?: Float64Array): Float64Array {
  const dIn = mlp.fcW.rows;
  const H = mlp.fcW.cols;
  const d = mlp.projW.cols;
  const fcW = mlp.fcW.data;
  const projW = mlp.projW.data;
  const y = new Float64Array(n * d);
  const invStd = 1 / Math.sqrt(mlp.lnVariance + mlp.lnEps);
  // Which positions to compute; the others copy an earlier position with the same one-hot inputs.
  const source = new Int32Array(n);
  const todo: number[] = [];
  const memo = new Map<string, number>();
  const allHot = inputs.every((x) => x.hot);
  for (let i = 0; i < n; i++) {
    source[i] = i;
    if (allHot) {
      const key = inputs.map((x) => (x.hot as Int32Array)[i]).join(',');
      const seen = memo.get(key);
      if (seen !== undefined) {
        source[i] = seen;
        continue;
      }
      memo.set(key, i);
    }
    todo.push(i);
  }
  const inp = new Float64Array(MLP_BLOCK * dIn);
  const h = new Float64Array(MLP_BLOCK * H);
  const H1 = H;
  const H2 = 2 * H;
  const H3 = 3 * H;
  for (let b0 = 0; b0 < todo.length; b0 += MLP_BLOCK) {
    const m = Math.min(MLP_BLOCK, todo.length - b0);
    for (let p = 0; p < m; p++) {
      const i = todo[b0 + p];
      const io = p * dIn;
      if (mlp.constant) for (let c = 0; c < dIn; c++) inp[io + c] = mlp.constant[c];
      else inp.fill(0, io, io + dIn);
      for (let k = 0; k < inputs.length; k++) {
        const x = inputs[k];
        const E = mlp.inputEmbeddings[k].data;
        const s = x.basis.size;
        const xo = i * s;
        for (let r = 0; r < s; r++) {
          const w = x.data[xo + r];
          if (w === 0) continue;
          const eo = r * dIn;
          for (let c = 0; c < dIn; c++) inp[io + c] += w * E[eo + c];
        }
      }
      let mean = 0;
      for (let c = 0; c < dIn; c++) mean += inp[io + c];
      mean /= dIn;
      for (let c = 0; c < dIn; c++) inp[io + c] = (inp[io + c] - mean) * mlp.lnGamma[c] * invStd;
      const ho = p * H;
      for (let u = 0; u < H; u++) h[ho + u] = mlp.fcB[u];
    }
    // h[p] += inp[p][c] · fcW[c] for c in order (a zero input adds nothing and is skipped, as one at a time)
    for (let c = 0; c < dIn; c++) {
      const wo = c * H;
      const v0 = inp[c];
      const v1 = inp[dIn + c];
      const v2 = inp[2 * dIn + c];
      const v3 = inp[3 * dIn + c];
      if (m === 4 && v0 !== 0 && v1 !== 0 && v2 !== 0 && v3 !== 0) {
        for (let u = 0; u < H; u++) {
          const w = fcW[wo + u];
          h[u] += v0 * w;
          h[H1 + u] += v1 * w;
          h[H2 + u] += v2 * w;
          h[H3 + u] += v3 * w;
        }
      } else {
        for (let p = 0; p < m; p++) {
          const v = inp[p * dIn + c];
          if (v === 0) continue;
          const ho = p * H;
          for (let u = 0; u < H; u++) h[ho + u] += v * fcW[wo + u];
        }
      }
    }
    for (let p = 0; p < m; p++) {
      const i = todo[b0 + p];
      const ho = p * H;
      for (let u = 0; u < H; u++) h[ho + u] = geluNew(h[ho + u]);
      if (hidden) hidden.set(h.subarray(ho, ho + H), i * H);
      const yo = i * d;
      for (let c = 0; c < d; c++) y[yo + c] = mlp.projB[c];
    }
    // y[p] += gelu(h[p][u]) · projW[u] for u in order (zero activations skipped, as one at a time)
    const y0 = todo[b0] * d;
    const y1 = m === 4 ? todo[b0 + 1] * d : 0;
    const y2 = m === 4 ? todo[b0 + 2] * d : 0;
    const y3 = m === 4 ? todo[b0 + 3] * d : 0;
    for (let u = 0; u < H; u++) {
      const wo = u * d;
      const g0 = h[u];
      const g1 = h[H1 + u];
      const g2 = h[H2 + u];
      const g3 = h[H3 + u];
      if (m === 4 && g0 !== 0 && g1 !== 0 && g2 !== 0 && g3 !== 0) {
        for (let c = 0; c < d; c++) {
          const w = projW[wo + c];
          y[y0 + c] += g0 * w;
          y[y1 + c] += g1 * w;
          y[y2 + c] += g2 * w;
          y[y3 + c] += g3 * w;
        }
      } else {
        for (let p = 0; p < m; p++) {
          const g = h[p * H + u];
          if (g === 0) continue;
          const yo = todo[b0 + p] * d;
          for (let c = 0; c < d; c++) y[yo + c] += g * projW[wo + c];
        }
      }
    }
  }
  for (let i = 0; i < n; i++) {
    const j = source[i];
    if (j === i) continue;
    y.copyWithin(i * d, j * d, j * d + d);
    if (hidden) hidden.copyWithin(i * H, j * H, j * H + H);
  }
  return y;
}
