// Program-level rewriting: who reads what, renaming, dead-code elimination (d-rasp.md 2.6) and merging identical
// statements. Programs are treated as values: every function returns a new Program and never mutates its input
// (statements are replaced, not edited, so callers can keep the previous version for rollback).
import type { Matrix, Op, Program, Statement } from '../../program/types';
import { exprRefs } from '../../program/bases';
import { isUniform } from './library';

export function cloneProgram(p: Program): Program {
  return {
    header: p.header,
    statements: [...p.statements],
    matrices: new Map(p.matrices),
    mlps: new Map(p.mlps),
    ...(p.file !== undefined ? { file: p.file } : {}),
  };
}

/** Variables and selectors a statement reads. */
export function readsOf(s: Statement): string[] {
  switch (s.kind) {
    case 'select':
      return s.q !== undefined ? [s.q, s.k] : [s.k];
    case 'aggregate':
      return [...s.selectors, s.v];
    case 'elementwise':
      return s.fn.name === 'expr' ? [...s.inputs, ...exprRefs(s.fn.expr)] : [...s.inputs];
    case 'project':
      return s.inp !== undefined ? [s.inp] : [];
    case 'prediction':
      return [...s.terms];
  }
}

/** The statement with every read of `from` replaced by `to` (hand-written maps are left alone: they are never merged). */
export function renameReads(s: Statement, from: string, to: string): Statement {
  const r = (n: string): string => (n === from ? to : n);
  switch (s.kind) {
    case 'select':
      return { ...s, k: r(s.k), ...(s.q !== undefined ? { q: r(s.q) } : {}) };
    case 'aggregate':
      return { ...s, v: r(s.v), selectors: s.selectors.map(r) };
    case 'elementwise':
      return { ...s, inputs: s.inputs.map(r) };
    case 'project':
      return s.inp !== undefined ? { ...s, inp: r(s.inp) } : s;
    case 'prediction':
      return { ...s, terms: s.terms.map(r) };
  }
}

export function renameEverywhere(p: Program, from: string, to: string): Program {
  const out = cloneProgram(p);
  out.statements = p.statements.map((s) => renameReads(s, from, to));
  return out;
}

export function statementByName(p: Program, name: string): Statement | undefined {
  return p.statements.find((s) => s.name === name);
}

/** A name not yet defined in the program, starting from `base`. */
export function freshName(p: Program, base: string, taken: ReadonlySet<string> = new Set()): string {
  const used = new Set([...p.statements.map((s) => s.name), 'token', 'pos', ...taken]);
  if (!used.has(base)) return base;
  for (let i = 2; ; i++) if (!used.has(`${base}_${i}`)) return `${base}_${i}`;
}

/** A matrix name not yet used. */
export function freshMatrixName(p: Program, base: string): string {
  if (!p.matrices.has(base)) return base;
  for (let i = 2; ; i++) if (!p.matrices.has(`${base}_${i}`)) return `${base}_${i}`;
}

function isZeroMatrixOp(p: Program, op: Op | undefined): boolean {
  if (!op || op.kind !== 'matrix') return false;
  const m = p.matrices.get(op.ref);
  if (!m) return false;
  for (const v of m.data) if (v !== 0) return false;
  return true;
}

/** An op that scores nothing: the uniform primitive, a zero scale or an all-zero matrix. */
export function isNullOp(p: Program, op: Op | undefined): boolean {
  if (!op) return false;
  if (isUniform(op) || isZeroMatrixOp(p, op)) return true;
  return op.kind !== 'matrix' && op.scale === 0;
}

/**
 * Dead-code elimination (d-rasp.md 2.6): selects whose op scores nothing disappear (an aggregate left without
 * selectors attends uniformly, `s=[]`), projections that add nothing leave the prediction, then every statement
 * the prediction does not depend on goes, and so do matrices and MLP weights nothing references.
 */
export function eliminateDeadCode(p: Program): Program {
  const dropped = new Set<string>();
  for (const s of p.statements) {
    if (s.kind === 'select' && isNullOp(p, s.op) && (!s.specialOp || isNullOp(p, s.specialOp))) dropped.add(s.name);
    if (s.kind === 'project' && isNullOp(p, s.op) && (!s.specialOp || isNullOp(p, s.specialOp))) dropped.add(s.name);
  }
  let statements: Statement[] = p.statements.map((s) => {
    if (s.kind === 'aggregate' && s.selectors.some((n) => dropped.has(n))) {
      return { ...s, selectors: s.selectors.filter((n) => !dropped.has(n)) };
    }
    if (s.kind === 'prediction') {
      const terms = s.terms.filter((n) => !dropped.has(n));
      // A prediction needs at least one term; keep the first if every projection was null.
      return { ...s, terms: terms.length > 0 ? terms : s.terms.slice(0, 1) };
    }
    return s;
  });
  const live = new Set<string>();
  for (let i = statements.length - 1; i >= 0; i--) {
    const s = statements[i];
    if (s.kind === 'prediction' || live.has(s.name)) {
      live.add(s.name);
      for (const r of readsOf(s)) live.add(r);
    }
  }
  statements = statements.filter((s) => live.has(s.name));
  const out = cloneProgram(p);
  out.statements = statements;
  const usedMatrices = new Set<string>();
  const usedMlps = new Set<string>();
  for (const s of statements) {
    if ((s.kind === 'select' || s.kind === 'project') && s.op.kind === 'matrix') usedMatrices.add(s.op.ref);
    if ((s.kind === 'select' || s.kind === 'project') && s.specialOp?.kind === 'matrix') usedMatrices.add(s.specialOp.ref);
    if (s.kind === 'elementwise' && s.fn.name === 'mlp') usedMlps.add(s.fn.ref);
  }
  for (const k of [...out.matrices.keys()]) if (!usedMatrices.has(k)) out.matrices.delete(k);
  for (const k of [...out.mlps.keys()]) if (!usedMlps.has(k)) out.mlps.delete(k);
  return out;
}

function matrixKey(m: Matrix): string {
  // FNV-1a over the float64 bit patterns; equal keys are confirmed entry by entry before merging.
  let h = 0x811c9dc5;
  const view = new DataView(new ArrayBuffer(8));
  for (const v of m.data) {
    view.setFloat64(0, v);
    for (let b = 0; b < 8; b++) {
      h ^= view.getUint8(b);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
  }
  return `${m.rows}x${m.cols}:${h.toString(16)}`;
}

function sameMatrix(a: Matrix | undefined, b: Matrix | undefined): boolean {
  if (!a || !b || a.rows !== b.rows || a.cols !== b.cols) return false;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}

function opKey(p: Program, op: Op | undefined, withScale = true): string {
  if (!op) return '-';
  if (op.kind === 'matrix') {
    const m = p.matrices.get(op.ref);
    return m ? `m:${matrixKey(m)}` : `ref:${op.ref}`;
  }
  const scale = withScale ? `:${op.scale}` : '';
  return op.kind === 'primitive' ? `u:${op.name}${scale}` : `p:${op.label}${scale}`;
}

function sameOp(p: Program, a: Op | undefined, b: Op | undefined): boolean {
  if (a?.kind === 'matrix' && b?.kind === 'matrix') return a.ref === b.ref || sameMatrix(p.matrices.get(a.ref), p.matrices.get(b.ref));
  return opKey(p, a) === opKey(p, b);
}

/** Identity signature of a statement's computation (its inputs and op), or undefined when it must not be merged. */
function signature(p: Program, s: Statement): string | undefined {
  switch (s.kind) {
    case 'select':
      return `S|${s.q ?? ''}|${s.k}|${opKey(p, s.op)}|${opKey(p, s.specialOp)}`;
    case 'aggregate':
      return `A|${[...s.selectors].sort().join('+')}|${s.v}`;
    case 'elementwise':
      if (s.fn.name === 'expr') return undefined;
      return `E|${JSON.stringify(s.fn)}|${s.inputs.join(',')}`;
    default:
      return undefined;
  }
}

function mergeablePair(p: Program, a: Statement, b: Statement): boolean {
  if (a.kind === 'select' && b.kind === 'select') return sameOp(p, a.op, b.op) && sameOp(p, a.specialOp, b.specialOp);
  return true;
}

/**
 * Merges statements that compute the same thing (same kind, inputs and op): later copies are deleted and their
 * readers renamed to the first. Two selects are not merged when one aggregate sums both (that would halve its
 * scores). Projections of one input with the same predicate (or any two matrices) are summed into one line.
 * Repeats until nothing changes, since merging inputs can make their readers identical.
 */
export function mergeIdentical(p: Program): { program: Program; merged: number } {
  let cur = p;
  let merged = 0;
  for (let changed = true; changed; ) {
    changed = false;
    const seen = new Map<string, Statement>();
    for (const s of cur.statements) {
      const sig = signature(cur, s);
      if (sig === undefined) continue;
      const first = seen.get(sig);
      if (!first) {
        seen.set(sig, s);
        continue;
      }
      if (!mergeablePair(cur, first, s)) continue;
      if (s.kind === 'select' && cur.statements.some((a) => a.kind === 'aggregate' && a.selectors.includes(first.name) && a.selectors.includes(s.name))) {
        continue;
      }
      const next = renameEverywhere(cur, s.name, first.name);
      next.statements = next.statements.filter((t) => t !== s && t.name !== s.name);
      cur = next;
      merged++;
      changed = true;
      break;
    }
    if (changed) continue;
    const summed = mergeProjections(cur);
    if (summed) {
      cur = summed;
      merged++;
      changed = true;
    }
  }
  return { program: cur, merged };
}

/** Sums one pair of projections of the same input into one line; undefined when there is no such pair. */
function mergeProjections(p: Program): Program | undefined {
  const pred = p.statements.find((s) => s.kind === 'prediction');
  if (!pred || pred.kind !== 'prediction') return undefined;
  const projs = p.statements.filter((s) => s.kind === 'project' && pred.terms.includes(s.name));
  for (let i = 0; i < projs.length; i++) {
    for (let j = i + 1; j < projs.length; j++) {
      const a = projs[i];
      const b = projs[j];
      if (a.kind !== 'project' || b.kind !== 'project' || a.inp !== b.inp) continue;
      if (!sameOp(p, a.specialOp, b.specialOp)) continue;
      let op: Op | undefined;
      const out = cloneProgram(p);
      if (a.op.kind === 'matrix' && b.op.kind === 'matrix' && !a.specialOp) {
        const ma = p.matrices.get(a.op.ref);
        const mb = p.matrices.get(b.op.ref);
        if (!ma || !mb || ma.rows !== mb.rows || ma.cols !== mb.cols) continue;
        // float32-representable sums (see linalg.toMatrix)
        const data = new Float64Array(ma.data.length);
        for (let t = 0; t < data.length; t++) data[t] = Math.fround(ma.data[t] + mb.data[t]);
        const ref = freshMatrixName(p, `${a.op.ref}_sum`);
        out.matrices.set(ref, { rows: ma.rows, cols: ma.cols, data });
        op = { kind: 'matrix', ref };
      } else if (a.op.kind !== 'matrix' && b.op.kind !== 'matrix' && opKey(p, a.op, false) === opKey(p, b.op, false)) {
        op = { ...a.op, scale: a.op.scale + b.op.scale };
      }
      if (!op) continue;
      out.statements = p.statements
        .filter((s) => s !== b)
        .map((s) => {
          if (s === a) return { ...a, op };
          if (s.kind === 'prediction') return { ...s, terms: s.terms.filter((t) => t !== b.name) };
          return s;
        });
      return out;
    }
  }
  return undefined;
}
