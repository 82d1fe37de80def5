// The MLP primitive library of d-rasp.md 5.1 as feature maps on collected input rows, and the candidate list.
import { COUNT_DIFF_RANGE, DIFF_EDGES } from '../../program/bases';
import type { Basis, ElementwiseFn } from '../../program/types';
import { applyCartesian, applyUnary, type Rows } from '../../interpreter/elementwise';
import { hstack, type Dense } from './linalg';

/** A candidate replacement for an MLP line: an element-wise function, or an alias of one input (no_op/keep_one). */
export type MlpCandidate =
  /** `input` set: a single-input primitive applied to that input only (the others are dropped). */
  | { kind: 'fn'; fn: ElementwiseFn; label: string; input?: number; additive?: boolean; family?: string }
  | { kind: 'alias'; input: number; label: string }
  /** Every input read linearly: the MLP line disappears into its (projection) readers. */
  | { kind: 'linear'; label: string };

/**
 * Inputs a candidate's features read linearly after its own block (additive candidates and `linear`). An additive
 * candidate of a single-input MLP reads its own input linearly: f(x) + linear x.
 */
export function linearRest(c: MlpCandidate, inputCount: number): number[] {
  if (c.kind === 'linear') return [...Array(inputCount).keys()];
  if (c.kind === 'fn' && c.additive) return inputCount === 1 ? [0] : [...Array(inputCount).keys()].filter((k) => k !== c.input);
  return [];
}

/** Output size of a candidate for the given input bases. */
export function candidateSize(c: MlpCandidate, inputs: readonly Basis[]): number {
  const rest = linearRest(c, inputs.length).reduce((n, k) => n + inputs[k].size, 0);
  if (c.kind === 'linear') return rest;
  if (c.kind === 'fn' && c.additive) return ownSize({ ...c, additive: false }, inputs) + rest;
  return ownSize(c, inputs);
}

function ownSize(c: MlpCandidate, inputs: readonly Basis[]): number {
  if (c.kind === 'linear') return 0;
  if (c.kind === 'alias') return inputs[c.input].size;
  const n = inputs[c.input ?? 0].size;
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
    case 'count_diff':
      return 2 * COUNT_DIFF_RANGE + 2;
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

/**
 * Feature rows F = prim(X) for one candidate; `xs[k]` holds the rows of input k. The primitives themselves are the
 * interpreter's (interpreter/elementwise.ts), so the fitted readout sees exactly what the program will compute.
 */
export function features(c: MlpCandidate, xs: readonly Dense[], inputs: readonly Basis[]): Dense {
  const rest = linearRest(c, inputs.length);
  if (rest.length === 0) return ownFeatures(c, xs, inputs);
  // [f(x_k) | x_j for the other inputs]: the primitive on one input plus a linear read of the rest
  return hstack([...(c.kind === 'fn' ? [ownFeatures({ ...c, additive: false }, xs, inputs)] : []), ...rest.map((k) => xs[k])]);
}

function ownFeatures(c: MlpCandidate, xs: readonly Dense[], inputs: readonly Basis[]): Dense {
  if (c.kind === 'linear') throw new Error('linear has no own features');
  const rows = xs[0].rows;
  const m = candidateSize(c, inputs);
  const out: Basis = { kind: 'feature', size: m, labels: [] };
  const asRows = (k: number): Rows => ({ basis: inputs[k], data: xs[k].data });
  if (c.kind === 'alias') return { rows, cols: m, data: Float64Array.from(xs[c.input].data) };
  switch (c.fn.name) {
    case 'erase':
      return { rows, cols: 1, data: new Float64Array(rows).fill(1) };
    case 'keep_one':
      return { rows, cols: m, data: Float64Array.from(xs[c.fn.index].data) };
    case 'cartesian':
      return { rows, cols: m, data: applyCartesian(xs.map((_, k) => asRows(k)), out, rows) };
    default:
      return { rows, cols: m, data: applyUnary(c.fn, asRows(c.input ?? 0), out, rows) };
  }
}

export interface CandidateContext {
  /** Bases of the MLP's inputs. */
  inputs: readonly Basis[];
  /** Names of the inputs (for labels). */
  names: readonly string[];
  /** Ids of the special tokens (excluded from `equal` and the diff/balance pairs). */
  specialIds: ReadonlySet<number>;
  /** The BOS id (count_diff's reference entry), when the program declares one. */
  bos?: number;
  /** Per input: true when it carries attention (an aggregate upstream); diff/balance need a mixture. */
  viaAttention: readonly boolean[];
  /** Largest Cartesian product basis to try (the fit is cubic in it). */
  maxProduct: number;
}

/**
 * count_diff scales tried (1/e^delta for a BOS key score delta below to above the other keys'), nearest to 1 first:
 * among equal fits the plain count wins.
 */
export const COUNT_DIFF_SCALES: readonly number[] = Array.from({ length: 31 }, (_, k) => Math.round((0.25 + 0.05 * k) * 100) / 100).sort(
  (a, b) => Math.abs(Math.log(a)) - Math.abs(Math.log(b)),
);

/** The single-input library for one input, in the paper's order (without no_op). */
function singleInput(basis: Basis, attention: boolean, specialIds: ReadonlySet<number>, bos: number | undefined): MlpCandidate[] {
  const n = basis.size;
  const normal = basis.kind === 'token' ? [...Array(n).keys()].filter((i) => !specialIds.has(i)) : [];
  const out: MlpCandidate[] = [];
  const add = (fn: ElementwiseFn, label: string): void => {
    out.push({ kind: 'fn', fn, label });
  };
  if (attention && basis.kind === 'token' && normal.length >= 2 && normal.length <= 4) {
    for (let a = 0; a < normal.length; a++) {
      for (let c = a + 1; c < normal.length; c++) add({ name: 'diff', i: normal[a], j: normal[c] }, `diff ${normal[a]} ${normal[c]}`);
    }
    // Beyond the paper: the paper's diff bins are 0.13 wide, so at lengths 101-150 a bounded count difference (Dyck
    // depth 0-2 is a share difference of < 0.02) falls in one bin. count_diff divides by the BOS share (one BOS per
    // prefix) and so reads the count itself. Its scale absorbs a select that weighs BOS unlike the other keys
    // (BOS share e^-delta / (n + e^-delta): the ratio is the count times e^delta); one candidate per scale, of which
    // only the best fit per pair goes on (`family`).
    if (bos !== undefined && bos < n) {
      for (let a = 0; a < normal.length; a++) {
        for (let c = a + 1; c < normal.length; c++) {
          for (const scale of COUNT_DIFF_SCALES) {
            out.push({ kind: 'fn', fn: { name: 'count_diff', i: normal[a], j: normal[c], by: bos, scale }, label: `count_diff ${normal[a]} ${normal[c]} scale ${scale}`, family: `count_diff ${normal[a]} ${normal[c]}` });
          }
        }
      }
    }
  }
  for (const power of [2, 3, 5]) add({ name: 'sharpen', power }, `sharpen ${power}`);
  add({ name: 'harden' }, 'harden');
  add({ name: 'erase' }, 'erase');
  const balanceP = [0.5, 0.05, 0.01];
  // The balance primitives read fixed indices (01: entries 0,1; AB: entries 2,3), so they only make sense when
  // those are exactly the normal tokens.
  if (attention && normal.join() === '0,1,2,3') for (const p of balanceP) add({ name: 'balance', which: 'AB', p, c: 0 }, `AB balance ${p}`);
  if (attention && normal.join() === '0,1') for (const p of balanceP) add({ name: 'balance', which: '01', p, c: 0 }, `01 balance ${p}`);
  for (const threshold of [0.95, 0.9, 0.85, 0.8, 0.75, 0.7]) add({ name: 'forall', threshold }, `forall ${threshold}`);
  for (let i = 0; i < n; i++) add({ name: 'exists', index: i }, `exists ${i}`);
  // equal over the normal tokens ("all normal tokens equally frequent"); the paper's "first n-4 dims" is the same
  // set for a token basis. Printed by the language as is_uniform.
  if (normal.length >= 2) add({ name: 'equal', indices: normal }, 'equal');
  return out;
}

/**
 * The candidate list in the paper's order (d-rasp.md 5.2): no_op, diff, sharpen 2/3/5, harden, erase, AB and 01
 * balance, forall, exists, equal; for several inputs: erase, keep_one each, combine. The paper gates diff and the
 * balances on basis sizes 6 and 8 (one or two bracket pairs); we state the same thing as "the token basis has two
 * (01) or four (AB) normal tokens" and offer diff on every pair of normal tokens when there are at most four.
 *
 * Beyond the paper: our decompiler emits unsplit MLPs (one line per layer reading every kept input), where the
 * paper's split mode has one MLP per input path. So for several inputs we also try every single-input primitive on
 * each input alone (the MLP's effect depends on that input only), which recovers what split mode would find.
 */
export function mlpCandidates(ctx: CandidateContext): MlpCandidate[] {
  const { inputs } = ctx;
  if (inputs.length > 1) {
    const out: MlpCandidate[] = [{ kind: 'fn', fn: { name: 'erase' }, label: 'erase' }];
    inputs.forEach((_, n) => out.push({ kind: 'alias', input: n, label: `keep_one ${ctx.names[n]}` }));
    const size = inputs.reduce((p, b) => p * b.size, 1);
    if (size <= ctx.maxProduct) out.push({ kind: 'fn', fn: { name: 'cartesian' }, label: 'combine' });
    inputs.forEach((b, k) => {
      for (const c of singleInput(b, ctx.viaAttention[k], ctx.specialIds, ctx.bos)) {
        if (c.kind === 'fn' && c.fn.name !== 'erase') out.push({ ...c, input: k, label: `${c.label} of ${ctx.names[k]}`, ...(c.family ? { family: `${c.family} of ${ctx.names[k]}` } : {}) });
      }
    });
    // The MLP may add a function of one input to linear reads of the others (e.g. Dyck: diff(a1) plus token and
    // position terms); readers that are projections can carry the linear parts as extra projection lines.
    out.push({ kind: 'linear', label: 'linear' });
    inputs.forEach((b, k) => {
      for (const c of singleInput(b, ctx.viaAttention[k], ctx.specialIds, ctx.bos)) {
        if (c.kind === 'fn' && c.fn.name !== 'erase') out.push({ ...c, input: k, additive: true, label: `${c.label} of ${ctx.names[k]} + linear rest`, ...(c.family ? { family: `${c.family} of ${ctx.names[k]} + linear rest` } : {}) });
      }
    });
    return out;
  }
  // Beyond the paper: f(x) + a linear read of x, when no pure primitive is accepted (bce_D2: the MLP's effect on the
  // logits is almost linear in the counting aggregate, FVU 0.006, but its decisions hinge on the depth)
  const single = singleInput(inputs[0], ctx.viaAttention[0], ctx.specialIds, ctx.bos);
  const additive: MlpCandidate[] = [];
  for (const c of single) {
    if (c.kind === 'fn' && c.fn.name !== 'erase') additive.push({ ...c, input: 0, additive: true, label: `${c.label} + linear ${ctx.names[0]}`, ...(c.family ? { family: `${c.family} + linear` } : {}) });
  }
  return [{ kind: 'alias', input: 0, label: 'no_op' }, ...single, ...additive];
}
