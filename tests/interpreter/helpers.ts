// In-memory program construction for interpreter tests (independent of the parser).
import type { Expr, Matrix, Op, OpaqueMlp, Program, Statement } from '../../server/src/program/types';

export function makeProgram(
  vocab: string[],
  statements: Statement[],
  options: {
    positions?: number;
    output?: 'softmax' | 'sigmoid';
    dHead?: number;
    matrices?: Record<string, Matrix>;
    mlps?: Record<string, OpaqueMlp>;
  } = {},
): Program {
  const special: Program['header']['special'] = {};
  vocab.forEach((t, i) => {
    if (t === '<bos>') special.bos = i;
    if (t === '<sep>') special.sep = i;
    if (t === '<eos>') special.eos = i;
    if (t === '<pad>') special.pad = i;
  });
  return {
    header: {
      vocab,
      special,
      positions: options.positions ?? 160,
      output: options.output ?? 'softmax',
      ...(options.dHead !== undefined ? { dHead: options.dHead } : {}),
    },
    statements: statements.map((s, i) => ({ ...s, line: s.line || i + 1 })),
    matrices: new Map(Object.entries(options.matrices ?? {})),
    mlps: new Map(Object.entries(options.mlps ?? {})),
  };
}

export function matrix(rows: number, cols: number, values: number[] | ((r: number, c: number) => number)): Matrix {
  const data = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      data[r * cols + c] = typeof values === 'function' ? values(r, c) : values[r * cols + c];
    }
  }
  return { rows, cols, data };
}

const q: Expr = { kind: 'ref', name: 'q' };
const k: Expr = { kind: 'ref', name: 'k' };
const inp: Expr = { kind: 'ref', name: 'inp' };
const out: Expr = { kind: 'ref', name: 'out' };
export const refs = { q, k, inp, out };

export function num(value: number): Expr {
  return { kind: 'num', value };
}

export function bin(op: Extract<Expr, { kind: 'binary' }>['op'], left: Expr, right: Expr): Expr {
  return { kind: 'binary', op, left, right };
}

export function pred(label: string, expr: Expr, scale = 1e4): Op {
  return { kind: 'predicate', label, expr, scale };
}

export function prim(name: 'uniform' | 'first' | 'last', scale = 1e4): Op {
  return { kind: 'primitive', name, label: name, scale };
}

/** inp==out: the identity readout. */
export const IDENTITY: Op = pred('inp==out', bin('==', inp, out));
/** k==q */
export const DIAG: Op = pred('k==q', bin('==', k, q));
/** k<=q (strict `k<q` variants are built inline). */
export const LE: Op = pred('k<=q', bin('<=', k, q));
