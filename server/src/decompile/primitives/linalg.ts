// Small dense float64 linear algebra for least-squares fits on feature matrices (at most a few hundred columns):
// normal equations with a tiny ridge, solved by Cholesky. A tensor library would be overkill at these sizes.
import type { Matrix } from '../../program/types';

/** Row-major float64 matrix. */
export interface Dense {
  rows: number;
  cols: number;
  data: Float64Array;
}

export function dense(rows: number, cols: number, data?: ArrayLike<number>): Dense {
  const out = new Float64Array(rows * cols);
  if (data) out.set(data);
  return { rows, cols, data: out };
}

export function fromMatrix(m: Matrix): Dense {
  return dense(m.rows, m.cols, m.data);
}

/**
 * A program matrix from a dense one, with float32-representable entries kept in a Float64Array: the sidecar stores
 * float32 and inline matrices print float64 exactly, so either way the program reads back with the very values it
 * was judged with (a value that changed in the last bits could flip a near-tie).
 */
export function toMatrix(m: Dense): Matrix {
  return { rows: m.rows, cols: m.cols, data: Float64Array.from(m.data, Math.fround) };
}

/**
 * a (r x k) times b (k x c). Rows of a go four at a time (each row of b read once for them); every entry sums its
 * products in k order, skipping zeros of a, exactly as row by row. With `init` (one row of b.cols), every row starts
 * from it (a bias added first).
 */
export function matmul(a: Dense, b: Dense, init?: ArrayLike<number>): Dense {
  if (a.cols !== b.rows) throw new Error(`matmul shape mismatch ${a.rows}x${a.cols} * ${b.rows}x${b.cols}`);
  const K = a.cols;
  const C = b.cols;
  const A = a.data;
  const B = b.data;
  const out = new Float64Array(a.rows * C);
  if (init) for (let i = 0; i < a.rows; i++) for (let j = 0; j < C; j++) out[i * C + j] = init[j];
  for (let i0 = 0; i0 < a.rows; i0 += 4) {
    const m = Math.min(4, a.rows - i0);
    const [o0, o1, o2, o3] = [i0 * C, (i0 + 1) * C, (i0 + 2) * C, (i0 + 3) * C];
    for (let k = 0; k < K; k++) {
      const bo = k * C;
      const v0 = A[i0 * K + k];
      if (m === 4) {
        const v1 = A[(i0 + 1) * K + k];
        const v2 = A[(i0 + 2) * K + k];
        const v3 = A[(i0 + 3) * K + k];
        if (v0 !== 0 && v1 !== 0 && v2 !== 0 && v3 !== 0) {
          for (let j = 0; j < C; j++) {
            const w = B[bo + j];
            out[o0 + j] += v0 * w;
            out[o1 + j] += v1 * w;
            out[o2 + j] += v2 * w;
            out[o3 + j] += v3 * w;
          }
          continue;
        }
      }
      for (let r = 0; r < m; r++) {
        const v = A[(i0 + r) * K + k];
        if (v === 0) continue;
        const o = (i0 + r) * C;
        for (let j = 0; j < C; j++) out[o + j] += v * B[bo + j];
      }
    }
  }
  return { rows: a.rows, cols: C, data: out };
}

export function transpose(a: Dense): Dense {
  const out = new Float64Array(a.rows * a.cols);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) out[j * a.rows + i] = a.data[i * a.cols + j];
  return { rows: a.cols, cols: a.rows, data: out };
}

/** aᵀ a without materialising the transpose. */
function gram(a: Dense): Float64Array {
  const k = a.cols;
  const g = new Float64Array(k * k);
  for (let r = 0; r < a.rows; r++) {
    const o = r * k;
    for (let i = 0; i < k; i++) {
      const v = a.data[o + i];
      if (v === 0) continue;
      for (let j = i; j < k; j++) g[i * k + j] += v * a.data[o + j];
    }
  }
  for (let i = 0; i < k; i++) for (let j = 0; j < i; j++) g[i * k + j] = g[j * k + i];
  return g;
}

/** In-place Cholesky factor (lower) of a symmetric positive definite k x k matrix; false when not SPD. */
function cholesky(g: Float64Array, k: number): boolean {
  for (let j = 0; j < k; j++) {
    let s = g[j * k + j];
    for (let p = 0; p < j; p++) s -= g[j * k + p] * g[j * k + p];
    if (!(s > 0)) return false;
    const d = Math.sqrt(s);
    g[j * k + j] = d;
    for (let i = j + 1; i < k; i++) {
      let t = g[i * k + j];
      for (let p = 0; p < j; p++) t -= g[i * k + p] * g[j * k + p];
      g[i * k + j] = t / d;
    }
  }
  return true;
}

/**
 * Least squares C = argmin |F C - Y|² (+ a ridge of 1e-9 x mean diagonal, which makes the normal equations
 * solvable when a feature never fires and leaves that feature's row of C at ~0, as the pseudo-inverse would).
 */
export function leastSquares(f: Dense, y: Dense): Dense {
  if (f.rows !== y.rows) throw new Error('leastSquares: row mismatch');
  const k = f.cols;
  const g = gram(f);
  let trace = 0;
  for (let i = 0; i < k; i++) trace += g[i * k + i];
  let ridge = Math.max((trace / Math.max(k, 1)) * 1e-9, 1e-12);
  const fty = matmul(transpose(f), y);
  for (;;) {
    const h = Float64Array.from(g);
    for (let i = 0; i < k; i++) h[i * k + i] += ridge;
    if (cholesky(h, k)) {
      const c = new Float64Array(k * y.cols);
      for (let col = 0; col < y.cols; col++) {
        // forward then backward substitution on one right-hand side
        const z = new Float64Array(k);
        for (let i = 0; i < k; i++) {
          let s = fty.data[i * y.cols + col];
          for (let p = 0; p < i; p++) s -= h[i * k + p] * z[p];
          z[i] = s / h[i * k + i];
        }
        for (let i = k - 1; i >= 0; i--) {
          let s = z[i];
          for (let p = i + 1; p < k; p++) s -= h[p * k + i] * c[p * y.cols + col];
          c[i * y.cols + col] = s / h[i * k + i];
        }
      }
      return { rows: k, cols: y.cols, data: c };
    }
    ridge *= 100;
  }
}

/** Fraction of variance unexplained: MSE(pred, Y) / mean per-column variance of Y (d-rasp.md 5.2). Pass
 * `varSum = varianceSum(y)` when scoring many fits against one Y. */
export function fvu(pred: Dense, y: Dense, varSum = varianceSum(y)): number {
  let sse = 0;
  for (let i = 0; i < y.data.length; i++) {
    const e = pred.data[i] - y.data[i];
    sse += e * e;
  }
  if (varSum <= 1e-30) return sse <= 1e-30 ? 0 : Infinity;
  return sse / varSum;
}

/** Σ over columns of Σ_i (y_ij - mean_j)²: the denominator of fvu. */
export function varianceSum(y: Dense): number {
  const n = y.rows;
  let varSum = 0;
  for (let j = 0; j < y.cols; j++) {
    let m = 0;
    for (let i = 0; i < n; i++) m += y.data[i * y.cols + j];
    m /= n;
    for (let i = 0; i < n; i++) {
      const e = y.data[i * y.cols + j] - m;
      varSum += e * e;
    }
  }
  return varSum;
}

/** [B_1 | B_2 | ...]: matrices with the same row count side by side. */
export function hstack(blocks: readonly Dense[]): Dense {
  const rows = blocks[0].rows;
  const cols = blocks.reduce((n, b) => n + b.cols, 0);
  const data = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let at = r * cols;
    for (const b of blocks) {
      data.set(b.data.subarray(r * b.cols, (r + 1) * b.cols), at);
      at += b.cols;
    }
  }
  return { rows, cols, data };
}
