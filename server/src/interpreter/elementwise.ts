// Element-wise primitives of d-rasp.md 5.1, applied per position, and the exact opaque-MLP computation.
// Inputs and outputs are row-major n x size Float64Arrays.
import type { Basis, ElementwiseFn, OpaqueMlp } from '../program/types';
import { DIFF_EDGES } from '../program/bases';

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
 * The opaque MLP exactly (types.ts OpaqueMlp): input = sum_k x_k E_k + constant; linear layer norm with the fixed
 * variance; gelu_new(h fcW + fcB) projW + projB. Positions whose inputs are all one-hot with the same entries share
 * one evaluation.
 */
export function applyMlp(mlp: OpaqueMlp, inputs: Rows[], n: number): Float64Array {
  const dIn = mlp.fcW.rows;
  const hidden = mlp.fcW.cols;
  const d = mlp.projW.cols;
  const y = new Float64Array(n * d);
  const inp = new Float64Array(dIn);
  const h = new Float64Array(hidden);
  const invStd = 1 / Math.sqrt(mlp.lnVariance + mlp.lnEps);
  const memo = new Map<string, number>();
  const allHot = inputs.every((x) => x.hot);
  for (let i = 0; i < n; i++) {
    const yo = i * d;
    if (allHot) {
      const key = inputs.map((x) => (x.hot as Int32Array)[i]).join(',');
      const seen = memo.get(key);
      if (seen !== undefined) {
        y.copyWithin(yo, seen * d, seen * d + d);
        continue;
      }
      memo.set(key, i);
    }
    if (mlp.constant) for (let c = 0; c < dIn; c++) inp[c] = mlp.constant[c];
    else inp.fill(0);
    inputs.forEach((x, k) => {
      const E = mlp.inputEmbeddings[k];
      const s = x.basis.size;
      const xo = i * s;
      for (let r = 0; r < s; r++) {
        const w = x.data[xo + r];
        if (w === 0) continue;
        const eo = r * dIn;
        for (let c = 0; c < dIn; c++) inp[c] += w * E.data[eo + c];
      }
    });
    let mean = 0;
    for (let c = 0; c < dIn; c++) mean += inp[c];
    mean /= dIn;
    for (let c = 0; c < dIn; c++) inp[c] = (inp[c] - mean) * mlp.lnGamma[c] * invStd;
    for (let u = 0; u < hidden; u++) h[u] = mlp.fcB[u];
    for (let c = 0; c < dIn; c++) {
      const v = inp[c];
      if (v === 0) continue;
      const wo = c * hidden;
      for (let u = 0; u < hidden; u++) h[u] += v * mlp.fcW.data[wo + u];
    }
    for (let c = 0; c < d; c++) y[yo + c] = mlp.projB[c];
    for (let u = 0; u < hidden; u++) {
      const g = geluNew(h[u]);
      if (g === 0) continue;
      const wo = u * d;
      for (let c = 0; c < d; c++) y[yo + c] += g * mlp.projW.data[wo + c];
    }
  }
  return y;
}
