// The MLP primitive library of d-rasp.md 5.1 as feature maps on collected input rows. The feature order of each
// primitive is the one program/bases.ts labels (e.g. diff: 11 bins, then the "sum<0.2" flag), so a readout C fitted
// here is read by consumers in exactly the basis the interpreter gives the new variable.
import { DIFF_EDGES } from '../../program/bases';
import type { Basis, ElementwiseFn } from '../../program/types';
import type { Dense } from './linalg';

/** A candidate replacement for an MLP line: an element-wise function, or an alias of one input (no_op/keep_one). */
export type MlpCandidate =
  | { kind: 'fn'; fn: ElementwiseFn; label: string }
  | { kind: 'alias'; input: number; label: string };

/** Threshold of `exists` (d-rasp.md 5.1). */
export const EXISTS_THRESHOLD = 0.1;
/** `equal` holds when max - min over its indices is below this. */
export const EQUAL_TOLERANCE = 0.01;
/** `diff` flags rows whose two entries sum to less than this (then no bin fires). */
export const DIFF_FLAG_SUM = 0.2;

function rowOf(x: Dense, r: number): Float64Array {
  return x.data.subarray(r * x.cols, (r + 1) * x.cols);
}

function diffFeatures(x: Float64Array, i: number, j: number, out: Float64Array): void {
  if (x[i] + x[j] < DIFF_FLAG_SUM) {
    out[DIFF_EDGES.length - 1] = 1;
    return;
  }
  const d = x[i] - x[j];
  for (let b = 0; b < DIFF_EDGES.length - 1; b++) {
    const last = b === DIFF_EDGES.length - 2;
    if (d >= DIFF_EDGES[b] && (d < DIFF_EDGES[b + 1] || (last && d <= DIFF_EDGES[b + 1]))) {
      out[b] = 1;
      return;
    }
  }
  // |x_i - x_j| <= 1 for probability-like inputs; anything outside the edges lands in the nearest end bin.
  out[d < 0 ? 0 : DIFF_EDGES.length - 2] = 1;
}

/** Output size of a candidate for the given input bases. */
export function candidateSize(c: MlpCandidate, inputs: readonly Basis[]): number {
  if (c.kind === 'alias') return inputs[c.input].size;
  const n = inputs[0].size;
  switch (c.fn.name) {
    case 'harden':
    case 'sharpen':
      return n;
    case 'exists':
    case 'equal':
      return 2;
    case 'forall':
      return n + 1;
    case 'balance':
      return 3;
    case 'diff':
      return DIFF_EDGES.length;
    case 'erase':
      return 1;
    case 'keep_one':
      return inputs[c.fn.index].size;
    case 'cartesian':
      return inputs.reduce((p, b) => p * b.size, 1);
    default:
      throw new Error(`no feature map for ${c.fn.name}`);
  }
}

/** Feature rows F = prim(X) for one candidate; `xs[k]` holds the rows of input k. */
export function features(c: MlpCandidate, xs: readonly Dense[], inputs: readonly Basis[]): Dense {
  const rows = xs[0].rows;
  const m = candidateSize(c, inputs);
  const out = new Float64Array(rows * m);
  for (let r = 0; r < rows; r++) {
    const o = out.subarray(r * m, (r + 1) * m);
    if (c.kind === 'alias') {
      o.set(rowOf(xs[c.input], r));
      continue;
    }
    const x = rowOf(xs[0], r);
    const fn = c.fn;
    switch (fn.name) {
      case 'harden': {
        let best = 0;
        for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
        o[best] = 1;
        break;
      }
      case 'sharpen': {
        let s = 0;
        for (let i = 0; i < x.length; i++) {
          o[i] = Math.pow(Math.max(x[i], 0), fn.power);
          s += o[i];
        }
        if (s > 0) for (let i = 0; i < x.length; i++) o[i] /= s;
        break;
      }
      case 'exists':
        o[0] = x[fn.index] > EXISTS_THRESHOLD ? 1 : 0;
        o[1] = 1 - o[0];
        break;
      case 'forall': {
        let s = 0;
        for (let i = 0; i < x.length; i++) {
          o[i] = x[i] > fn.threshold ? 1 : 0;
          s += o[i];
        }
        o[x.length] = 1 - s;
        break;
      }
      case 'equal': {
        let lo = Infinity;
        let hi = -Infinity;
        for (const i of fn.indices) {
          lo = Math.min(lo, x[i]);
          hi = Math.max(hi, x[i]);
        }
        o[0] = hi - lo < EQUAL_TOLERANCE ? 1 : 0;
        o[1] = 1 - o[0];
        break;
      }
      case 'balance': {
        const [lo, hi] = fn.which === '01' ? [0, 1] : [2, 3];
        const d = x[hi] - x[lo] - fn.c;
        o[0] = Math.pow(Math.max(d, 0), fn.p);
        o[1] = Math.pow(Math.max(-d, 0), fn.p);
        o[2] = 1 - o[0] - o[1];
        break;
      }
      case 'diff':
        diffFeatures(x, fn.i, fn.j, o);
        break;
      case 'erase':
        o[0] = 1;
        break;
      case 'keep_one':
        o.set(rowOf(xs[fn.index], r));
        break;
      case 'cartesian': {
        // Iterated outer product with element-wise min, last input fastest, renormalised (d-rasp.md 5.1).
        let acc = Float64Array.from(x);
        for (let k = 1; k < xs.length; k++) {
          const y = rowOf(xs[k], r);
          const next = new Float64Array(acc.length * y.length);
          for (let a = 0; a < acc.length; a++) for (let b = 0; b < y.length; b++) next[a * y.length + b] = Math.min(acc[a], y[b]);
          acc = next;
        }
        let s = 0;
        for (const v of acc) s += v;
        if (s > 0) for (let i = 0; i < acc.length; i++) o[i] = acc[i] / s;
        break;
      }
      default:
        throw new Error(`no feature map for ${fn.name}`);
    }
  }
  return { rows, cols: m, data: out };
}

export interface CandidateContext {
  /** Bases of the MLP's inputs. */
  inputs: readonly Basis[];
  /** Ids of the special tokens (excluded from `equal` and the diff/balance pairs). */
  specialIds: ReadonlySet<number>;
  /** True when the input carries attention (an aggregate somewhere upstream): diff/balance need a mixture. */
  viaAttention: boolean;
  /** Largest Cartesian product basis to try (the fit is cubic in it). */
  maxProduct: number;
}

/**
 * The candidate list in the paper's order (d-rasp.md 5.2): no_op, diff, sharpen 2/3/5, harden, erase, AB and 01
 * balance, forall, exists, equal; for several inputs: erase, keep_one each, combine. The paper gates diff and the
 * balances on basis sizes 6 and 8 (one or two bracket pairs); we state the same thing as "the token basis has two
 * (01) or four (AB) normal tokens" and offer diff on every pair of normal tokens when there are at most four.
 */
export function mlpCandidates(ctx: CandidateContext): MlpCandidate[] {
  const { inputs } = ctx;
  if (inputs.length > 1) {
    const out: MlpCandidate[] = [{ kind: 'fn', fn: { name: 'erase' }, label: 'erase' }];
    inputs.forEach((_, n) => out.push({ kind: 'alias', input: n, label: `keep_one ${n}` }));
    const size = inputs.reduce((p, b) => p * b.size, 1);
    if (size <= ctx.maxProduct) out.push({ kind: 'fn', fn: { name: 'cartesian' }, label: 'combine' });
    return out;
  }
  const b = inputs[0];
  const n = b.size;
  const normal = b.kind === 'token' ? [...Array(n).keys()].filter((i) => !ctx.specialIds.has(i)) : [];
  const out: MlpCandidate[] = [{ kind: 'alias', input: 0, label: 'no_op' }];
  if (ctx.viaAttention && b.kind === 'token' && normal.length >= 2 && normal.length <= 4) {
    for (let a = 0; a < normal.length; a++) {
      for (let c = a + 1; c < normal.length; c++) {
        out.push({ kind: 'fn', fn: { name: 'diff', i: normal[a], j: normal[c] }, label: `diff ${normal[a]} ${normal[c]}` });
      }
    }
  }
  for (const power of [2, 3, 5]) out.push({ kind: 'fn', fn: { name: 'sharpen', power }, label: `sharpen ${power}` });
  out.push({ kind: 'fn', fn: { name: 'harden' }, label: 'harden' });
  out.push({ kind: 'fn', fn: { name: 'erase' }, label: 'erase' });
  const balanceP = [0.5, 0.05, 0.01];
  // The balance primitives read fixed indices (01: entries 0,1; AB: entries 2,3), so they only make sense when
  // those are exactly the normal tokens.
  if (ctx.viaAttention && normal.length === 4 && normal.join() === '0,1,2,3') {
    for (const p of balanceP) out.push({ kind: 'fn', fn: { name: 'balance', which: 'AB', p, c: 0 }, label: `AB balance ${p}` });
  }
  if (ctx.viaAttention && normal.length === 2 && normal.join() === '0,1') {
    for (const p of balanceP) out.push({ kind: 'fn', fn: { name: 'balance', which: '01', p, c: 0 }, label: `01 balance ${p}` });
  }
  for (const threshold of [0.95, 0.9, 0.85, 0.8, 0.75, 0.7]) {
    out.push({ kind: 'fn', fn: { name: 'forall', threshold }, label: `forall ${threshold}` });
  }
  for (let i = 0; i < n; i++) out.push({ kind: 'fn', fn: { name: 'exists', index: i }, label: `exists ${i}` });
  // equal over the normal tokens ("all normal tokens equally frequent"); the paper's "first n-4 dims" is the same
  // set for a token basis. Printed by the language as is_uniform.
  if (normal.length >= 2) out.push({ kind: 'fn', fn: { name: 'equal', indices: normal }, label: 'equal' });
  return out;
}
