// The meaning of every op (predicate, primitive, named matrix) as a matrix over (rows, cols) bases. This is the one
// place where op semantics live: the interpreter, the checker and the language server's heatmaps all call it.
//   select:  rows = query basis (1 row for key-only selects), cols = key basis;
//   project: rows = input basis (1 row for the bias),          cols = vocabulary.
// Predicates: M[r, c] = scale * [expr holds] with q/inp = the row's value and k/out = the column's value
// (see expr.ts for what a value is in each basis). A label that is arithmetic rather than a condition (`-k*k`,
// `2*out`) is graded: M[r, c] = scale * its value (a condition is the special case with values 0 and 1). Primitives: uniform = 0; first = scale*(cols-c)/cols (favours
// the earliest key); last = scale*(c+1)/cols (favours the latest key).
import type { Basis, Matrix, Op, Program, SelectStatement, ProjectStatement } from '../program/types';
import { isBooleanExpr, ProgramError } from '../program/bases';
import { UserError } from '../util/errors';
import { basisValueType, compileExpr, type Compiled, type LeafResolver } from './expr';

/** Largest op matrix built from a label (a 4096 x 4096 position matrix): beyond, memory runs out, not time. */
export const MAX_OP_ENTRIES = 4096 * 4096;

/** The one-row basis of a key-only select's query side and of a bias projection's input side. */
export const UNIT_BASIS: Basis = { kind: 'numeric', size: 1, labels: ['*'] };

interface CacheEntry {
  /** The op's fields when built: an op edited in place (a new scale, say) must not hit a stale entry. */
  scale: number;
  what: unknown;
  rows: Basis;
  cols: Basis;
  vocab: readonly string[];
  special: string;
  matrix: Matrix;
}

// Predicate matrices over position bases can be P x P; building one is the expensive part of a run, so they are
// cached per op object (programs are treated as immutable once built).
const cache = new WeakMap<Op, CacheEntry[]>();

function sameBasis(a: Basis, b: Basis): boolean {
  if (a === b) return true;
  if (a.kind !== b.kind || a.size !== b.size) return false;
  if (a.labels === b.labels) return true;
  for (let i = 0; i < a.size; i++) if (a.labels[i] !== b.labels[i]) return false;
  return true;
}

interface PredCtx {
  r: number;
  c: number;
}

function predicateMatrix(program: Program, op: Op & { kind: 'predicate' }, rows: Basis, cols: Basis): Matrix {
  const names = new Set<string>();
  const collect = (e: typeof op.expr): void => {
    if (e.kind === 'ref') names.add(e.name);
    else if (e.kind === 'unary') collect(e.arg);
    else if (e.kind === 'binary') {
      collect(e.left);
      collect(e.right);
    } else if (e.kind === 'call') e.args.forEach(collect);
    else if (e.kind === 'index') collect(e.key);
  };
  collect(op.expr);
  // The names tell whether this is a select op (q,k) or a project op (inp,out).
  const isProject = names.has('inp') || names.has('out');
  if (isProject && (names.has('q') || names.has('k'))) {
    throw new UserError(`op (${op.label}) mixes q/k with inp/out`);
  }
  const rowName = isProject ? 'inp' : 'q';
  const colName = isProject ? 'out' : 'k';
  const leaf: LeafResolver<PredCtx> = (e) => {
    if (e.kind === 'ref' && e.name === rowName) {
      if (rows === UNIT_BASIS) throw new UserError(`op (${op.label}) uses ${rowName}, but this statement has none`);
      return { ty: basisValueType(rows), f: (c) => c.r };
    }
    if (e.kind === 'ref' && e.name === colName) return { ty: basisValueType(cols), f: (c) => c.c };
    throw new UserError(
      `op (${op.label}) can only use ${rowName} and ${colName}, not ${e.kind === 'ref' ? e.name : `${e.target}[...]`}`,
    );
  };
  const pred: Compiled<PredCtx> = compileExpr(program, op.expr, leaf);
  const data = new Float64Array(rows.size * cols.size);
  const ctx: PredCtx = { r: 0, c: 0 };
  const f = pred.f;
  const scale = op.scale;
  const condition = isBooleanExpr(op.expr);
  for (let r = 0; r < rows.size; r++) {
    ctx.r = r;
    const base = r * cols.size;
    for (let c = 0; c < cols.size; c++) {
      ctx.c = c;
      const v = f(ctx);
      if (condition) {
        if (v !== 0) data[base + c] = scale;
        continue;
      }
      const m = scale * v;
      if (!Number.isFinite(m)) {
        throw new UserError(`op (${op.label}) is ${m} at ${rowName}=${rows.labels[r] ?? r}, ${colName}=${cols.labels[c] ?? c}`);
      }
      data[base + c] = m;
    }
  }
  return { rows: rows.size, cols: cols.size, data };
}

function primitiveMatrix(op: Op & { kind: 'primitive' }, rows: Basis, cols: Basis): Matrix {
  const n = cols.size;
  const data = new Float64Array(rows.size * n);
  if (op.name !== 'uniform') {
    for (let c = 0; c < n; c++) {
      const v = op.scale * (op.name === 'first' ? (n - c) / n : (c + 1) / n);
      for (let r = 0; r < rows.size; r++) data[r * n + c] = v;
    }
  }
  return { rows: rows.size, cols: n, data };
}

/**
 * The matrix of `op` over the given bases. Named matrices come from program.matrices (a missing one is a
 * UserError); predicate and primitive matrices are built (and cached per op).
 */
export function opMatrix(program: Program, op: Op, rows: Basis, cols: Basis): Matrix {
  if (op.kind === 'matrix') {
    const m = program.matrices.get(op.ref);
    if (!m) throw new UserError(`matrix ${op.ref} is missing (neither in the file nor in its sidecar)`);
    if (m.rows !== rows.size || m.cols !== cols.size) {
      throw new UserError(`matrix ${op.ref} is ${m.rows}x${m.cols}, expected ${rows.size}x${cols.size}`);
    }
    if (m.data.length !== m.rows * m.cols) {
      throw new UserError(`matrix ${op.ref} holds ${m.data.length} numbers, not ${m.rows}x${m.cols}`);
    }
    return m;
  }
  const vocab = program.header.vocab;
  const special = JSON.stringify(program.header.special);
  const entries = cache.get(op) ?? [];
  const what = op.kind === 'predicate' ? op.expr : op.name;
  for (const e of entries) {
    if (
      e.scale === op.scale &&
      e.what === what &&
      e.vocab === vocab &&
      e.special === special &&
      sameBasis(e.rows, rows) &&
      sameBasis(e.cols, cols)
    ) {
      return e.matrix;
    }
  }
  if (rows.size * cols.size > MAX_OP_ENTRIES) {
    throw new UserError(
      `the op matrix would be ${rows.size}x${cols.size}, more than ${MAX_OP_ENTRIES} entries (is the position range too large?)`,
    );
  }
  const matrix = op.kind === 'predicate' ? predicateMatrix(program, op, rows, cols) : primitiveMatrix(op, rows, cols);
  entries.push({ scale: op.scale, what, rows, cols, vocab, special, matrix });
  // Keep a few shapes per op (an op object is normally used with one pair of bases).
  if (entries.length > 4) entries.shift();
  cache.set(op, entries);
  return matrix;
}

/** Ids of the special tokens (bos, sep, eos, pad) present in the vocabulary, ascending. */
export function specialRows(program: Program): number[] {
  const s = program.header.special;
  return [s.bos, s.sep, s.eos, s.pad].filter((x): x is number => x !== undefined).sort((a, b) => a - b);
}

/**
 * The effective matrix of a select or project statement: `op`, with the rows of special tokens taken from
 * `specialOp` when the statement has one (token-basis query / input only, d-rasp.md 3.4).
 */
export function statementMatrix(
  program: Program,
  stmt: SelectStatement | ProjectStatement,
  rows: Basis,
  cols: Basis,
): Matrix {
  const base = opMatrix(program, stmt.op, rows, cols);
  if (!stmt.specialOp) return base;
  if (rows.kind !== 'token') {
    throw new ProgramError(`special_op needs a token-basis ${stmt.kind === 'select' ? 'query' : 'input'}`, stmt);
  }
  const special = opMatrix(program, stmt.specialOp, rows, cols);
  // Reuse the merged matrix while both parts are the same (cached) matrices, so later runs share its analysis.
  const seen = mergedCache.get(stmt);
  if (seen && seen.base === base && seen.special === special) return seen.merged;
  const data = Float64Array.from(base.data);
  for (const r of specialRows(program)) {
    if (r >= rows.size) continue;
    for (let c = 0; c < cols.size; c++) data[r * cols.size + c] = special.data[r * cols.size + c];
  }
  const merged = { rows: rows.size, cols: cols.size, data };
  mergedCache.set(stmt, { base, special, merged });
  return merged;
}

const mergedCache = new WeakMap<SelectStatement | ProjectStatement, { base: Matrix; special: Matrix; merged: Matrix }>();
