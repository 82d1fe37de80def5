// Random, valid programs for benchmarks, property tests and fuzzing: selects over token-, position- and derived
// bases with predicates, primitives and named matrices, aggregates, element-wise primitives and projections.
import type { Basis, Expr, Matrix, Op, Program, Statement } from '../program/types';
import { inferBases } from '../program/bases';
import { Rng } from '../util/rng';

export interface RandomProgramOptions {
  /** Number of normal tokens (the four special tokens are added). */
  tokens?: number;
  positions?: number;
  /** Approximate number of statements (the prediction included). */
  statements?: number;
  dHead?: number;
  output?: 'softmax' | 'sigmoid';
  /** Include element-wise primitives (harden, exists, diff, ...). */
  elementwise?: boolean;
  /**
   * What selects read as q and k: 'input' = token, pos, hardened values and token-basis aggregates (what extracted
   * programs mostly look like); 'any' = any earlier variable, soft position-basis aggregates included.
   */
  selectOn?: 'input' | 'any';
}

const ref = (name: string): Expr => ({ kind: 'ref', name });
const bin = (op: Extract<Expr, { kind: 'binary' }>['op'], left: Expr, right: Expr): Expr => ({ kind: 'binary', op, left, right });

function predicate(label: string, expr: Expr, scale = 1e4): Op {
  return { kind: 'predicate', label, expr, scale };
}

function randomMatrix(rng: Rng, rows: number, cols: number, scale: number): Matrix {
  const data = new Float64Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = rng.next() < 0.3 ? Math.round((rng.next() * 2 - 1) * scale) : 0;
  return { rows, cols, data };
}

/** A random program that passes inferBases; inputs are any token ids of length <= positions. */
export function randomProgram(seed: number, options: RandomProgramOptions = {}): Program {
  const rng = new Rng(seed);
  const nTokens = options.tokens ?? 12;
  const vocab = [...Array.from({ length: nTokens }, (_, i) => String(i)), '<bos>', '<sep>', '<eos>', '<pad>'];
  const V = vocab.length;
  const program: Program = {
    header: {
      name: `random-${seed}`,
      vocab,
      special: { bos: nTokens, sep: nTokens + 1, eos: nTokens + 2, pad: nTokens + 3 },
      positions: options.positions ?? 160,
      output: options.output ?? 'softmax',
      ...(options.dHead !== undefined ? { dHead: options.dHead } : {}),
    },
    statements: [],
    matrices: new Map(),
    mlps: new Map(),
  };
  const target = options.statements ?? 20;
  const bases = new Map<string, Basis>([
    ['token', { kind: 'token', size: V, labels: vocab }],
    ['pos', { kind: 'pos', size: program.header.positions, labels: [] }],
  ]);
  const values = ['token', 'pos'];
  const logits: string[] = [];
  const out = program.statements;
  let s = 0;
  let a = 0;
  let m = 0;
  let counter = 0;
  const add = (stmt: Statement): void => {
    out.push({ ...stmt, line: out.length + 1 } as Statement);
  };
  const pairOp = (q: Basis, k: Basis): Op => {
    const options: (() => Op)[] = [
      () => predicate('k==q', bin('==', ref('k'), ref('q'))),
      () => predicate('k<=q', bin('<=', ref('k'), ref('q')), rng.choice([1, 3, 1e4])),
      () => ({ kind: 'primitive', name: rng.choice(['first', 'last', 'uniform'] as const), label: 'p', scale: rng.choice([1, 5, 1e4]) }),
    ];
    if (q.kind === 'pos' && k.kind === 'pos') {
      options.push(() => predicate('k==q-1', bin('==', ref('k'), bin('-', ref('q'), { kind: 'num', value: 1 }))));
      options.push(() => predicate('k%2==q%2', bin('==', bin('%', ref('k'), { kind: 'num', value: 2 }), bin('%', ref('q'), { kind: 'num', value: 2 }))));
    }
    if (q.size * k.size <= 4096) {
      options.push(() => {
        const name = `M${++counter}`;
        program.matrices.set(name, randomMatrix(rng, q.size, k.size, 5));
        return { kind: 'matrix', ref: name };
      });
    }
    return rng.choice(options)();
  };
  const hard = new Set(['token', 'pos']);
  while (out.length < target - 4) {
    const roll = rng.next();
    const recent = values.slice(-4);
    const selectable =
      options.selectOn === 'any'
        ? recent
        : values.filter((v) => hard.has(v) || (bases.get(v) as Basis).kind === 'token').slice(-4);
    if (roll < 0.6 || a === 0) {
      // One head: one or two selects, then an aggregate of a value.
      const sels: string[] = [];
      // Leave room for the aggregate and the four closing statements.
      const nSel = Math.min(rng.int(0, 2), target - 5 - out.length);
      for (let n = 0; n < nSel; n++) {
        const k = rng.choice(selectable);
        const kb = bases.get(k) as Basis;
        const name = `s${++s}`;
        if (rng.next() < 0.25) {
          const op: Op =
            kb.kind === 'token'
              ? predicate('k==BOS', bin('==', ref('k'), { kind: 'special', name: 'BOS' }))
              : { kind: 'primitive', name: rng.choice(['first', 'last'] as const), label: 'p', scale: rng.choice([1, 1e4]) };
          add({ kind: 'select', name, line: 0, k, op });
        } else {
          const q = rng.choice(selectable);
          const qb = bases.get(q) as Basis;
          const special =
            qb.kind === 'token' && rng.next() < 0.3 ? { specialOp: predicate('k==BOS', kb.kind === 'token' ? bin('==', ref('k'), { kind: 'special', name: 'BOS' }) : bin('==', ref('k'), { kind: 'num', value: 0 })) } : {};
          add({ kind: 'select', name, line: 0, q, k, op: pairOp(qb, kb), ...special });
        }
        sels.push(name);
      }
      const v = rng.choice(recent);
      const name = `a${++a}`;
      add({ kind: 'aggregate', name, line: 0, selectors: sels, v });
      bases.set(name, bases.get(v) as Basis);
      values.push(name);
    } else if (options.elementwise !== false && roll < 0.8) {
      const x = rng.choice(values.filter((v) => v.startsWith('a')));
      const xb = bases.get(x) as Basis;
      const fn = rng.choice([
        { name: 'harden' as const },
        { name: 'sharpen' as const, power: 2 },
        { name: 'exists' as const, index: rng.int(0, xb.size - 1) },
        { name: 'diff' as const, i: 0, j: Math.min(1, xb.size - 1) },
      ]);
      const name = `m${++m}_${x}`;
      add({ kind: 'elementwise', name, line: 0, fn, inputs: [x] });
      values.push(name);
      if (fn.name === 'harden') hard.add(name);
      bases.set(name, fn.name === 'exists' ? { kind: 'feature', size: 2, labels: [] } : fn.name === 'diff' ? { kind: 'feature', size: 12, labels: [] } : xb);
    } else {
      const inp = rng.choice(values);
      const ib = bases.get(inp) as Basis;
      const name = `logits${logits.length + 1}`;
      const op: Op =
        ib.kind === 'token' && rng.next() < 0.7
          ? predicate('inp==out', bin('==', ref('inp'), ref('out')), rng.choice([1, 10, 1e4]))
          : (() => {
              const mname = `M${++counter}`;
              program.matrices.set(mname, randomMatrix(rng, ib.size, V, 3));
              return { kind: 'matrix', ref: mname } as Op;
            })();
      add({ kind: 'project', name, line: 0, inp, op });
      logits.push(name);
    }
  }
  // Always read the latest aggregate and the token, plus a bias, so every program predicts something: exactly
  // `statements` lines in all.
  const last = values.filter((v) => v.startsWith('a')).at(-1) as string;
  const lastBasis = bases.get(last) as Basis;
  const readout: Op =
    lastBasis.kind === 'token'
      ? predicate('inp==out', bin('==', ref('inp'), ref('out')))
      : (() => {
          const mname = `M${++counter}`;
          program.matrices.set(mname, randomMatrix(rng, lastBasis.size, V, 3));
          return { kind: 'matrix', ref: mname } as Op;
        })();
  for (const [inp, op] of [
    [last, readout],
    ['token', predicate('inp==out', bin('==', ref('inp'), ref('out')), 2)],
    [undefined, predicate('out==EOS', bin('==', ref('out'), { kind: 'special', name: 'EOS' }), -1)],
  ] as const) {
    const name = `logits${logits.length + 1}`;
    add({ kind: 'project', name, line: 0, ...(inp ? { inp } : {}), op });
    logits.push(name);
  }
  add({ kind: 'prediction', name: 'prediction', line: 0, fn: program.header.output === 'sigmoid' ? 'sigmoid' : 'softmax', terms: logits });
  inferBases(program);
  return program;
}
