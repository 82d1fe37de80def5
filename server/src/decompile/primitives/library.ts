// The attention and logit primitive library (d-rasp.md 3.1-3.4) as program Ops whose labels are literally true to
// the matrix the interpreter builds from them. Two deliberate departures from the original code:
//  - its `third_diag` matrix was k == q-3 but printed `k==q-2`; ours is the predicate k == q-2, built from the label;
//  - its `gradually_smaller` matrix rises with k (favours the latest key) but printed `k is first`, and
//    `gradually_bigger` the reverse; ours are the `last` / `first` primitives and mean what they say.
import type { Basis, Expr, Op } from '../../program/types';

/** Scale of predefined primitives (d-rasp.md 3: every predefined matrix is multiplied by 1e4). */
export const PRIMITIVE_SCALE = 1e4;

const ref = (name: string): Expr => ({ kind: 'ref', name });
const num = (value: number): Expr => ({ kind: 'num', value });
const special = (name: 'BOS' | 'SEP' | 'EOS' | 'PAD'): Expr => ({ kind: 'special', name });
const bin = (op: '==' | '-' | '%', left: Expr, right: Expr): Expr => ({ kind: 'binary', op, left, right });

function predicate(label: string, expr: Expr, scale = PRIMITIVE_SCALE): Op {
  return { kind: 'predicate', label, expr, scale };
}

export const UNIFORM: Op = { kind: 'primitive', name: 'uniform', label: 'uniform selection', scale: PRIMITIVE_SCALE };
export const FIRST: Op = { kind: 'primitive', name: 'first', label: 'k is first', scale: PRIMITIVE_SCALE };
export const LAST: Op = { kind: 'primitive', name: 'last', label: 'k is last', scale: PRIMITIVE_SCALE };
export const K_IS_BOS = predicate('k==BOS', bin('==', ref('k'), special('BOS')));
export const K_IS_SEP = predicate('k==SEP', bin('==', ref('k'), special('SEP')));
export const K_IS_EOS = predicate('k==EOS', bin('==', ref('k'), special('EOS')));
export const K_IS_Q = predicate('k==q', bin('==', ref('k'), ref('q')));

/** k == q - d (d >= 1): the previous-token (d = 1) and earlier diagonals. */
export function kIsQMinus(d: number): Op {
  return predicate(`k==q-${d}`, bin('==', ref('k'), bin('-', ref('q'), num(d))));
}

/** q - k is a multiple of m: every m-th key counting back from the query (the original's every_second/third). */
export function everyNth(m: number): Op {
  return predicate(`(q-k)%${m}==0`, bin('==', bin('%', bin('-', ref('q'), ref('k')), num(m)), num(0)));
}

export const INP_IS_OUT = predicate('inp==out', bin('==', ref('inp'), ref('out')));
export const OUT_IS_EOS = predicate('out==EOS', bin('==', ref('out'), special('EOS')));

/** A candidate replacement of one op: the main op and, for token-basis queries/inputs, the op of special rows. */
export interface OpCandidate {
  op: Op;
  specialOp?: Op;
}

export function candidateLabel(c: OpCandidate): string {
  const main = c.op.kind === 'matrix' ? c.op.ref : c.op.label;
  return c.specialOp && c.specialOp.kind !== 'matrix' ? `${main}; special ${c.specialOp.label}` : main;
}

export function isUniform(op: Op | undefined): boolean {
  return op !== undefined && op.kind === 'primitive' && op.name === 'uniform';
}

function withSpecials(list: Op[], specials: Op[] | undefined): OpCandidate[] {
  const out: OpCandidate[] = [];
  for (const op of list) {
    out.push({ op });
    if (!specials) continue;
    // A special op equal to the main op would print the same thing twice (d-rasp.md 3.4).
    for (const s of specials) if (s !== op) out.push({ op, specialOp: s });
  }
  return out;
}

function hasSpecial(basis: Basis, which: 'bos' | 'sep' | 'eos', special: { bos?: number; sep?: number; eos?: number }): boolean {
  return basis.kind === 'token' && special[which] !== undefined;
}

export interface SpecialIdsLike {
  bos?: number;
  sep?: number;
  eos?: number;
}

/**
 * Candidates for a query x key select in the paper's order (3.1), restricted to the ones that mean something for
 * the bases: token-only predicates need a token key; k==q needs bases of one kind and size; the diagonals, every-m
 * and first/last compare positions and need position bases (the original also tried them on index numbers of
 * token bases, where they mean nothing). Special rows are tried only for token-basis queries.
 */
export function selectCandidates(q: Basis, k: Basis, ids: SpecialIdsLike): OpCandidate[] {
  const list: Op[] = [UNIFORM];
  if (hasSpecial(k, 'bos', ids)) list.push(K_IS_BOS);
  if (hasSpecial(k, 'sep', ids)) list.push(K_IS_SEP);
  const sameKind = q.kind === k.kind && q.size === k.size && (q.kind === 'token' || q.kind === 'pos');
  if (sameKind) list.push(K_IS_Q);
  const positional = q.kind === 'pos' && k.kind === 'pos';
  if (positional) list.push(kIsQMinus(1), kIsQMinus(2), everyNth(2), everyNth(3));
  if (k.kind === 'pos') list.push(LAST, FIRST);
  return withSpecials(list, q.kind === 'token' ? list : undefined);
}

/** Candidates for a key-only select (3.2). */
export function keyOnlyCandidates(k: Basis, ids: SpecialIdsLike): OpCandidate[] {
  const list: Op[] = [UNIFORM];
  if (hasSpecial(k, 'bos', ids)) list.push(K_IS_BOS);
  if (hasSpecial(k, 'eos', ids)) list.push(K_IS_EOS);
  if (hasSpecial(k, 'sep', ids)) list.push(K_IS_SEP);
  if (k.kind === 'pos') list.push(LAST, FIRST);
  return list.map((op) => ({ op }));
}

/** Candidates for a projection (3.3); `inp` undefined = the bias term. */
export function projectCandidates(inp: Basis | undefined, vocabSize: number, ids: SpecialIdsLike): OpCandidate[] {
  const eos = ids.eos !== undefined;
  if (!inp) return [{ op: UNIFORM }, ...(eos ? [{ op: OUT_IS_EOS }] : [])];
  const list: Op[] = [UNIFORM];
  if (eos) list.push(OUT_IS_EOS);
  // inp==out compares the input's basis index with the output token id: meaningful for token bases only.
  if (inp.kind === 'token' && inp.size === vocabSize) list.push(INP_IS_OUT);
  return withSpecials(list, inp.kind === 'token' ? list : undefined);
}
