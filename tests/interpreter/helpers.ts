// In-memory program construction for interpreter tests (independent of the parser), and a dense reference
// evaluation to compare the interpreter's fast paths with.
import { opMatrix, UNIT_BASIS } from '../../server/src/interpreter/index';
import { inferBases } from '../../server/src/program/bases';
import type { Basis, Expr, Matrix, Op, OpaqueMlp, Program, ProjectStatement, SelectStatement, Statement } from '../../server/src/program/types';

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

/**
 * Dense reference evaluation of d-rasp.md 6, every product written out in full and nothing skipped: values by
 * name, `select NAME` (all n x n raw scores), `attention NAME` (n x n weights, zero above the diagonal) and
 * `logits`. Element-wise statements: harden and sharpen only.
 */
export function denseReference(program: Program, ids: number[]): Map<string, Float64Array> {
  const bases = inferBases(program);
  const n = ids.length;
  const V = (bases.get('token') as Basis).size;
  const P = (bases.get('pos') as Basis).size;
  const env = new Map<string, Float64Array>();
  const onehot = (size: number, at: (i: number) => number) => {
    const x = new Float64Array(n * size);
    for (let i = 0; i < n; i++) x[i * size + at(i)] = 1;
    return x;
  };
  env.set('token', onehot(V, (i) => ids[i]));
  env.set('pos', onehot(P, (i) => i));
  const scores = new Map<string, Float64Array>();
  const size = (name: string) => (bases.get(name) as Basis).size;
  const matrixOf = (stmt: SelectStatement | ProjectStatement, rows: Basis, cols: Basis) => {
    const m = opMatrix(program, stmt.op, rows, cols);
    const data = Float64Array.from(m.data);
    if (stmt.specialOp) {
      const sp = opMatrix(program, stmt.specialOp, rows, cols);
      const special = Object.values(program.header.special) as number[];
      for (const r of special) for (let c = 0; c < cols.size; c++) data[r * cols.size + c] = sp.data[r * cols.size + c];
    }
    return data;
  };
  for (const st of program.statements) {
    if (st.kind === 'select') {
      const kb = bases.get(st.k) as Basis;
      const qb = st.q ? (bases.get(st.q) as Basis) : UNIT_BASIS;
      const M = matrixOf(st, qb, kb);
      const xk = env.get(st.k) as Float64Array;
      const xq = st.q ? (env.get(st.q) as Float64Array) : new Float64Array(n).fill(1);
      const S = new Float64Array(n * n);
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let r = 0; r < qb.size; r++) for (let c = 0; c < kb.size; c++) s += xq[i * qb.size + r] * M[r * kb.size + c] * xk[j * kb.size + c];
          S[i * n + j] = s;
        }
      scores.set(st.name, S);
      env.set(`select ${st.name}`, S);
    } else if (st.kind === 'aggregate') {
      const d = size(st.v);
      const xv = env.get(st.v) as Float64Array;
      const out = new Float64Array(n * d);
      const W = new Float64Array(n * n);
      const scale = program.header.dHead ? Math.sqrt(program.header.dHead) : 1;
      for (let i = 0; i < n; i++) {
        const z = Array.from({ length: i + 1 }, (_, j) => st.selectors.reduce((s, name) => s + (scores.get(name) as Float64Array)[i * n + j], 0) / scale);
        const max = Math.max(...z);
        const e = z.map((x) => Math.exp(x - max));
        const sum = e.reduce((s, x) => s + x, 0);
        e.forEach((w, j) => {
          W[i * n + j] = w / sum;
          for (let c = 0; c < d; c++) out[i * d + c] += (w / sum) * xv[j * d + c];
        });
      }
      env.set(st.name, out);
      env.set(`attention ${st.name}`, W);
    } else if (st.kind === 'project') {
      const ib = st.inp ? (bases.get(st.inp) as Basis) : UNIT_BASIS;
      const B = matrixOf(st, ib, bases.get('token') as Basis);
      const x = st.inp ? (env.get(st.inp) as Float64Array) : new Float64Array(n).fill(1);
      const out = new Float64Array(n * V);
      for (let i = 0; i < n; i++) for (let r = 0; r < ib.size; r++) for (let c = 0; c < V; c++) out[i * V + c] += x[i * ib.size + r] * B[r * V + c];
      env.set(st.name, out);
    } else if (st.kind === 'prediction') {
      const out = new Float64Array(n * V);
      for (const t of st.terms) (env.get(t) as Float64Array).forEach((v, idx) => (out[idx] += v));
      env.set('logits', out);
    } else if (st.fn.name === 'harden' || st.fn.name === 'sharpen') {
      const d = size(st.inputs[0]);
      const x = env.get(st.inputs[0]) as Float64Array;
      const out = new Float64Array(n * d);
      for (let i = 0; i < n; i++) {
        const row = Array.from(x.subarray(i * d, (i + 1) * d));
        if (st.fn.name === 'harden') {
          out[i * d + row.indexOf(Math.max(...row))] = 1;
        } else {
          const power = st.fn.power;
          const p = row.map((v) => Math.max(0, v) ** power);
          const sum = p.reduce((s, v) => s + v, 0);
          p.forEach((v, c) => (out[i * d + c] = sum > 0 ? v / sum : v));
        }
      }
      env.set(st.name, out);
    } else {
      throw new Error(`reference: no element-wise ${st.fn.name}`);
    }
  }
  return env;
}
