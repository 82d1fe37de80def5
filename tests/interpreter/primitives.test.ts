// Every element-wise primitive, predicate and op primitive against hand computations (d-rasp.md 3 and 5.1).
import { describe, expect, it } from 'vitest';
import { Execution, opMatrix, runProgram, RuntimeError, UNIT_BASIS } from '../../server/src/interpreter/index';
import { geluNew } from '../../server/src/interpreter/elementwise';
import { inferBases } from '../../server/src/program/bases';
import type { ElementwiseFn, Expr, Matrix, OpaqueMlp, Statement } from '../../server/src/program/types';
import { bin, IDENTITY, makeProgram, matrix, num, pred, prim, refs } from './helpers';

const vocab = ['a', 'b', 'c', 'd', '<bos>', '<sep>', '<eos>', '<pad>'];
const predict: Statement[] = [
  { kind: 'project', name: 'l1', line: 0, inp: 'token', op: IDENTITY },
  { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['l1'] },
];

/** Runs `fn` on the prefix histogram of `input` and returns the rows of its output. */
function applyOnHistogram(fn: ElementwiseFn, input: string, extra: Statement[] = []): number[][] {
  const p = makeProgram(vocab, [
    { kind: 'aggregate', name: 'h', line: 0, selectors: [], v: 'token' },
    ...extra,
    { kind: 'elementwise', name: 'y', line: 0, fn, inputs: fn.name === 'cartesian' || fn.name === 'keep_one' || fn.name === 'erase' ? ['h', 'e'] : ['h'] },
    ...predict,
  ]);
  const ex = new Execution(p, input);
  ex.runToEnd();
  const y = ex.value('y');
  if (!y) throw new Error('no value');
  return Array.from({ length: y.n }, (_, i) => Array.from(y.data.slice(i * y.basis.size, (i + 1) * y.basis.size)));
}

// "<bos> a a b": position 3 has a 1/2, b 1/4, bos 1/4.
const IN = '<bos> a a b';

describe('element-wise primitives (d-rasp.md 5.1)', () => {
  it('harden: one-hot of the argmax, first index on ties', () => {
    const rows = applyOnHistogram({ name: 'harden' }, IN);
    expect(rows[3]).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
    // position 1: a 1/2, bos 1/2 -> tie -> a (index 0)
    expect(rows[1]).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('sharpen: x^n / sum x^n', () => {
    const rows = applyOnHistogram({ name: 'sharpen', power: 2 }, IN);
    const s = 0.25 + 0.0625 + 0.0625;
    expect(rows[3][0]).toBeCloseTo(0.25 / s, 12);
    expect(rows[3][1]).toBeCloseTo(0.0625 / s, 12);
    expect(rows[3][4]).toBeCloseTo(0.0625 / s, 12);
  });

  it('exists: [x_idx > 0.1, 1 - that]', () => {
    expect(applyOnHistogram({ name: 'exists', index: 1 }, IN).map((r) => r[0])).toEqual([0, 0, 0, 1]);
    // exactly 0.1 is not > 0.1: ten tokens with one b
    const ten = `<bos> b ${'a '.repeat(8)}`.trim();
    expect(applyOnHistogram({ name: 'exists', index: 1 }, ten)[9]).toEqual([0, 1]);
    expect(applyOnHistogram({ name: 'exists', index: 1 }, ten)[8]).toEqual([1, 0]);
  });

  it('forall: [x_j > thr]_j ++ [1 - sum]', () => {
    const rows = applyOnHistogram({ name: 'forall', threshold: 0.6 }, '<bos> a a a');
    expect(rows[0]).toEqual([0, 0, 0, 0, 1, 0, 0, 0, 0]);
    expect(rows[2]).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 0]); // a = 2/3 > 0.6
    expect(rows[1]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1]); // a = 1/2: none
  });

  it('equal: [max - min over idxs < 0.01, 1 - that]', () => {
    const rows = applyOnHistogram({ name: 'equal', indices: [0, 1] }, '<bos> a b a');
    expect(rows.map((r) => r[0])).toEqual([1, 0, 1, 0]);
  });

  it('balance: d = x_hi - x_lo - c -> [relu(d)^p, relu(-d)^p, 1 - sum]', () => {
    const rows = applyOnHistogram({ name: 'balance', which: '01', p: 0.5, c: 0 }, IN);
    // position 3: b - a = -1/4
    expect(rows[3][0]).toBe(0);
    expect(rows[3][1]).toBeCloseTo(0.5, 12);
    expect(rows[3][2]).toBeCloseTo(0.5, 12);
    const ab = applyOnHistogram({ name: 'balance', which: 'AB', p: 1, c: 0.1 }, '<bos> c d d');
    // d - c - 0.1 = 1/2 - 1/4 - 0.1 = 0.15
    expect(ab[3][0]).toBeCloseTo(0.15, 12);
    expect(ab[3][1]).toBe(0);
  });

  it('diff: one-hot bin of x_i - x_j over the 11 bins, flag when x_i + x_j < 0.2', () => {
    const rows = applyOnHistogram({ name: 'diff', i: 0, j: 1 }, IN);
    expect(rows[0]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]); // nothing of a or b: flag
    // position 1: a - b = 0.5 -> [0.467, 0.6) = bin 9
    expect(rows[1].indexOf(1)).toBe(9);
    // position 3: a - b = 0.25 -> [0.2, 0.333) = bin 7
    expect(rows[3].indexOf(1)).toBe(7);
    // position 2: 2/3 -> [0.6, 1.1) = bin 10
    expect(rows[2].indexOf(1)).toBe(10);
    const neg = applyOnHistogram({ name: 'diff', i: 0, j: 1 }, '<bos> b b b b');
    // -0.8 -> [-1.1, -0.6) = bin 0
    expect(neg[4].indexOf(1)).toBe(0);
    // exactly 0 -> [-0.067, 0.067) = bin 5
    expect(applyOnHistogram({ name: 'diff', i: 0, j: 1 }, '<bos> a b')[2].indexOf(1)).toBe(5);
  });

  it('count_diff: (x_i - x_j) / x_by, scaled and rounded, one-hot over -4..4 (clamped), flag without the reference', () => {
    const bos = vocab.indexOf('<bos>');
    // the prefix histogram counts BOS once, so (a - b) / bos is the count difference at any length
    const long = `<bos> ${'a '.repeat(40)}${'b '.repeat(38)}`.trim();
    const rows = applyOnHistogram({ name: 'count_diff', i: 0, j: 1, by: bos, scale: 1 }, long);
    const value = (r: number[]): number => r.indexOf(1) - 4;
    expect(value(rows[0])).toBe(0);
    expect(value(rows[3])).toBe(3);
    expect(value(rows[40])).toBe(4); // 40 a's: clamped to the last bin
    expect(value(rows[40 + 37])).toBe(3);
    expect(value(rows[40 + 38])).toBe(2);
    expect(rows[0]).toHaveLength(10);
    // scale 0.5 halves the count (2.5 rounds away from zero as Math.round does: to 3; 1.5 to 2)
    const half = applyOnHistogram({ name: 'count_diff', i: 0, j: 1, by: bos, scale: 0.5 }, '<bos> a a a');
    expect(half.map(value)).toEqual([0, 1, 1, 2]);
    // the reference entry is absent: "no ref"
    const noRef = applyOnHistogram({ name: 'count_diff', i: 0, j: 1, by: vocab.indexOf('c'), scale: 1 }, IN);
    expect(noRef[3]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  });

  const e: Statement = { kind: 'elementwise', name: 'e', line: 0, fn: { name: 'exists', index: 0 }, inputs: ['h'] };

  it('erase: the constant [1]; keep_one: the chosen input', () => {
    expect(applyOnHistogram({ name: 'erase' }, IN, [e])).toEqual([[1], [1], [1], [1]]);
    expect(applyOnHistogram({ name: 'keep_one', index: 1 }, IN, [e])).toEqual([[0, 1], [1, 0], [1, 0], [1, 0]]);
  });

  it('cartesian: min outer product, renormalised ("a-b" labels, last input fastest)', () => {
    const rows = applyOnHistogram({ name: 'cartesian' }, IN, [e]);
    // position 0: h = bos one-hot, e = [0,1] -> one-hot of (bos, 1) = 4*2+1
    expect(rows[0].indexOf(1)).toBe(9);
    expect(rows[0].reduce((s, v) => s + v, 0)).toBe(1);
    // position 3: h = (1/2, 1/4, 0, 0, 1/4, ...), e = [1, 0]: min -> h's entries on e=1... renormalised
    expect(rows[3][0]).toBeCloseTo(0.5, 12);
    expect(rows[3][2]).toBeCloseTo(0.25, 12);
    expect(rows[3][8]).toBeCloseTo(0.25, 12);
    // soft x soft: min(x_a, y_b) then / sum
    const soft = applyOnHistogram({ name: 'cartesian' }, IN, [{ kind: 'elementwise', name: 'e', line: 0, fn: { name: 'sharpen', power: 1 }, inputs: ['h'] }]);
    const h = [0.5, 0.25, 0, 0, 0.25, 0, 0, 0];
    const raw = h.flatMap((x) => h.map((y) => Math.min(x, y)));
    const sum = raw.reduce((s, v) => s + v, 0);
    raw.forEach((v, idx) => expect(soft[3][idx]).toBeCloseTo(v / sum, 12));
  });

  it('expr maps: numeric and boolean, indexing by token and by index', () => {
    const p = makeProgram(vocab, [
      { kind: 'aggregate', name: 'h', line: 0, selectors: [], v: 'token' },
      {
        kind: 'elementwise',
        name: 'm',
        line: 0,
        fn: { name: 'expr', expr: bin('-', { kind: 'index', target: 'h', key: { kind: 'token', text: 'a' } }, { kind: 'index', target: 'h', key: num(1) }) },
        inputs: ['h'],
      },
      { kind: 'elementwise', name: 'big', line: 0, fn: { name: 'expr', expr: bin('>', { kind: 'ref', name: 'm' }, num(0.2)) }, inputs: ['m'] },
      { kind: 'elementwise', name: 'f', line: 0, fn: { name: 'expr', expr: { kind: 'call', fn: 'max', args: [{ kind: 'ref', name: 'm' }, num(0.3)] } }, inputs: ['m'] },
      ...predict,
    ]);
    const ex = new Execution(p, IN);
    ex.runToEnd();
    expect(Array.from(ex.value('m')?.data ?? [])).toEqual([0, 0.5, 2 / 3, 0.25]);
    expect(ex.value('big')?.basis.labels).toEqual(['false', 'true']);
    expect(Array.from(ex.value('big')?.data ?? [])).toEqual([1, 0, 0, 1, 0, 1, 0, 1]);
    expect(Array.from(ex.value('f')?.data ?? [])).toEqual([0.3, 0.5, 2 / 3, 0.3]);
  });

  it('a map giving a non-finite value is a RuntimeError at its line', () => {
    const p = makeProgram(vocab, [
      { kind: 'aggregate', name: 'h', line: 0, selectors: [], v: 'token' },
      { kind: 'elementwise', name: 'r', line: 0, fn: { name: 'expr', expr: bin('/', num(1), { kind: 'index', target: 'h', key: { kind: 'token', text: 'b' } }) }, inputs: ['h'] },
      ...predict,
    ]);
    expect(() => runProgram(p, IN)).toThrow(/line 2 \(r\): the map gives Infinity at position 0/);
  });
});

describe('opaque MLP', () => {
  function rand(seed: number): () => number {
    let s = seed;
    return () => {
      s = (s * 1103515245 + 12345) % 2147483648;
      return s / 2147483648 - 0.5;
    };
  }
  const r = rand(7);
  const d = 6;
  const hidden = 24;
  const m = (rows: number, cols: number): Matrix => matrix(rows, cols, () => r());
  const vec = (n: number) => Float32Array.from({ length: n }, () => r());
  const mlp: OpaqueMlp = {
    inputEmbeddings: [m(8, d), m(20, d)],
    constant: vec(d),
    lnGamma: vec(d),
    lnVariance: 0.7,
    lnEps: 1e-5,
    fcW: m(d, hidden),
    fcB: vec(hidden),
    projW: m(hidden, d),
    projB: vec(d),
  };

  /** Direct dense computation of types.ts OpaqueMlp, written independently of the interpreter's loops. */
  function dense(xs: number[][]): number[] {
    const inp = Array.from({ length: d }, (_, c) => (mlp.constant as Float32Array)[c]);
    xs.forEach((x, k) => {
      const E = mlp.inputEmbeddings[k];
      x.forEach((w, row) => {
        for (let c = 0; c < d; c++) inp[c] += w * E.data[row * d + c];
      });
    });
    const mean = inp.reduce((s, v) => s + v, 0) / d;
    const h = inp.map((v, c) => ((v - mean) * mlp.lnGamma[c]) / Math.sqrt(mlp.lnVariance + mlp.lnEps));
    const z = Array.from({ length: hidden }, (_, u) => mlp.fcB[u] + h.reduce((s, v, c) => s + v * mlp.fcW.data[c * hidden + u], 0));
    const g = z.map((x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))));
    return Array.from({ length: d }, (_, c) => mlp.projB[c] + g.reduce((s, v, u) => s + v * mlp.projW.data[u * d + c], 0));
  }

  it('matches a direct dense computation on soft and one-hot inputs', () => {
    const p = makeProgram(
      vocab,
      [
        { kind: 'aggregate', name: 'h', line: 0, selectors: [], v: 'token' },
        { kind: 'elementwise', name: 'm1', line: 0, fn: { name: 'mlp', ref: 'W' }, inputs: ['h', 'pos'] },
        { kind: 'elementwise', name: 'm2', line: 0, fn: { name: 'mlp', ref: 'W' }, inputs: ['token', 'pos'] },
        ...predict,
      ],
      { positions: 20, mlps: { W: mlp } },
    );
    expect(inferBases(p).get('m1')).toMatchObject({ kind: 'residual', size: d });
    const ex = new Execution(p, '<bos> a b a c a');
    ex.runToEnd();
    const tokens = [4, 0, 1, 0, 2, 0];
    for (let i = 0; i < 6; i++) {
      const h = Array.from({ length: 8 }, (_, t) => tokens.slice(0, i + 1).filter((x) => x === t).length / (i + 1));
      const posOneHot = Array.from({ length: 20 }, (_, p2) => (p2 === i ? 1 : 0));
      const tokOneHot = Array.from({ length: 8 }, (_, t) => (t === tokens[i] ? 1 : 0));
      const want1 = dense([h, posOneHot]);
      const want2 = dense([tokOneHot, posOneHot]);
      for (let c = 0; c < d; c++) {
        expect(ex.value('m1')?.data[i * d + c]).toBeCloseTo(want1[c], 10);
        expect(ex.value('m2')?.data[i * d + c]).toBeCloseTo(want2[c], 10);
      }
    }
  });

  it('gelu_new is the tanh approximation', () => {
    expect(geluNew(0)).toBe(0);
    expect(geluNew(1)).toBeCloseTo(0.8411919906, 9);
    expect(geluNew(-2)).toBeCloseTo(-0.0454023059, 9);
  });
});

describe('op matrices: predicates and primitives', () => {
  const numVocab = ['10', '9', '2', 'x', '<bos>', '<sep>', '<eos>', '<pad>'];
  const p = makeProgram(numVocab, predict, { positions: 5 });
  const bases = inferBases(p);
  const tok = bases.get('token');
  const pos = bases.get('pos');
  if (!tok || !pos) throw new Error('no bases');
  const rowsOf = (m: Matrix) => Array.from({ length: m.rows }, (_, r) => Array.from(m.data.slice(r * m.cols, (r + 1) * m.cols)));
  const kq = (op: Extract<Expr, { kind: 'binary' }>['op'], right: Expr = refs.q) => pred('t', bin(op, refs.k, right), 1);

  it('k==q-1 on positions', () => {
    const m = rowsOf(opMatrix(p, kq('==', bin('-', refs.q, num(1))), pos, pos));
    expect(m[3]).toEqual([0, 0, 1, 0, 0]);
    expect(m[0]).toEqual([0, 0, 0, 0, 0]);
  });

  it('token order and arithmetic use numeric values, equality is identity', () => {
    // k<q on tokens "10","9","2": by value, not by id
    const lt = rowsOf(opMatrix(p, kq('<'), tok, tok));
    expect(lt[0].slice(0, 3)).toEqual([0, 1, 1]); // q="10": 9 and 2 are smaller
    expect(lt[2].slice(0, 3)).toEqual([0, 0, 0]); // q="2"
    // a non-number token compares by id: "x" has id 3 -> 2 < 3
    expect(lt[3][2]).toBe(1);
    const eq = rowsOf(opMatrix(p, kq('=='), tok, tok));
    eq.forEach((row, r) => row.forEach((v, c) => expect(v).toBe(r === c ? 1 : 0)));
    // k==q-1 with numbers: "10" follows "9"
    expect(rowsOf(opMatrix(p, kq('==', bin('-', refs.q, num(1))), tok, tok))[0][1]).toBe(1);
  });

  it('mixed bases compare by index; BOS and token literals by identity', () => {
    const m = rowsOf(opMatrix(p, kq('=='), pos, tok));
    expect(m[4][4]).toBe(1); // position 4 == token id 4
    expect(m[2][2]).toBe(1);
    expect(m[2][1]).toBe(0);
    const bos = rowsOf(opMatrix(p, pred('k==BOS', bin('==', refs.k, { kind: 'special', name: 'BOS' }), 1), UNIT_BASIS, tok));
    expect(bos).toEqual([[0, 0, 0, 0, 1, 0, 0, 0]]);
    const lit = rowsOf(opMatrix(p, pred('out=="x"', bin('==', refs.out, { kind: 'token', text: 'x' }), 3), UNIT_BASIS, tok));
    expect(lit).toEqual([[0, 0, 0, 3, 0, 0, 0, 0]]);
  });

  it('modulo is floored; graded labels give scale * value', () => {
    const m = rowsOf(opMatrix(p, pred('(k-q)%3==0', bin('==', bin('%', bin('-', refs.k, refs.q), num(3)), num(0)), 1), pos, pos));
    expect(m[4]).toEqual([0, 1, 0, 0, 1]);
    const graded = rowsOf(opMatrix(p, pred('-k*k', { kind: 'unary', op: '-', arg: bin('*', refs.k, refs.k) }, 2), UNIT_BASIS, pos));
    expect(graded).toEqual([[-0, -2, -8, -18, -32]]);
  });

  it('first favours the earliest key, last the latest, uniform is zero; scale multiplies', () => {
    expect(rowsOf(opMatrix(p, prim('first', 10), pos, pos))[1]).toEqual([10, 8, 6, 4, 2]);
    expect(rowsOf(opMatrix(p, prim('last', 10), UNIT_BASIS, pos))[0]).toEqual([2, 4, 6, 8, 10]);
    expect(rowsOf(opMatrix(p, prim('uniform'), pos, pos)).flat().every((v) => v === 0)).toBe(true);
  });

  it('an op edited in place gets a fresh matrix', () => {
    const op = prim('last', 10);
    expect(rowsOf(opMatrix(p, op, UNIT_BASIS, pos))[0][4]).toBe(10);
    if (op.kind === 'primitive') op.scale = 20;
    expect(rowsOf(opMatrix(p, op, UNIT_BASIS, pos))[0][4]).toBe(20);
  });

  it('refuses a key-only op that uses q, and a missing named matrix', () => {
    expect(() => opMatrix(p, kq('=='), UNIT_BASIS, pos)).toThrow(/uses q, but this statement has none/);
    expect(() => opMatrix(p, { kind: 'matrix', ref: 'M9' }, pos, pos)).toThrow(/matrix M9 is missing/);
  });
});

describe('attention semantics', () => {
  const sel = (name: string, q: string | undefined, k: string, op: Statement & { kind: 'select' } extends { op: infer O } ? O : never, specialOp?: typeof op): Statement => ({
    kind: 'select',
    name,
    line: 0,
    ...(q ? { q } : {}),
    k,
    op,
    ...(specialOp ? { specialOp } : {}),
  });

  it('causal mask: no weight on later keys, earlier positions ignore later tokens', () => {
    const stmts: Statement[] = [
      sel('s1', 'pos', 'pos', prim('last', 1)),
      { kind: 'aggregate', name: 'a1', line: 0, selectors: ['s1'], v: 'token' },
      { kind: 'project', name: 'l1', line: 0, inp: 'a1', op: IDENTITY },
      { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['l1'] },
    ];
    const p = makeProgram(vocab, stmts, { positions: 10 });
    const ex = new Execution(p, '<bos> a b c d');
    ex.runToEnd();
    const W = ex.attention('a1') as Float64Array;
    for (let i = 0; i < 5; i++) {
      let sum = 0;
      for (let j = 0; j < 5; j++) {
        if (j > i) expect(W[i * 5 + j]).toBe(0);
        sum += W[i * 5 + j];
      }
      expect(sum).toBeCloseTo(1, 12);
    }
    const other = new Execution(p, '<bos> a b a a');
    other.runToEnd();
    expect(Array.from(other.value('a1')?.data.slice(0, 3 * 8) ?? [])).toEqual(Array.from(ex.value('a1')?.data.slice(0, 3 * 8) ?? []));
  });

  it('summed selector scores are divided by sqrt(d_head) before the softmax', () => {
    const stmts: Statement[] = [
      sel('s1', 'pos', 'pos', prim('last', 3)),
      sel('s2', undefined, 'token', pred('k==BOS', bin('==', refs.k, { kind: 'special', name: 'BOS' }), 2)),
      { kind: 'aggregate', name: 'a1', line: 0, selectors: ['s1', 's2'], v: 'token' },
      { kind: 'project', name: 'l1', line: 0, inp: 'a1', op: IDENTITY },
      { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['l1'] },
    ];
    for (const dHead of [undefined, 4, 16]) {
      const p = makeProgram(vocab, stmts, { positions: 4, ...(dHead ? { dHead } : {}) });
      const ex = new Execution(p, '<bos> a b');
      ex.runToEnd();
      const s1 = ex.selector('s1')?.scores as Float64Array;
      const s2 = ex.selector('s2')?.scores as Float64Array;
      // raw scores, not scaled: last over 4 positions with scale 3
      expect(s1[2 * 3 + 1]).toBeCloseTo((3 * 2) / 4, 12);
      expect(Array.from(s2.slice(0, 3))).toEqual([2, 0, 0]);
      const i = 2;
      const z = [0, 1, 2].map((j) => (s1[i * 3 + j] + s2[i * 3 + j]) / Math.sqrt(dHead ?? 1));
      const ez = z.map((v) => Math.exp(v));
      const w = ez.map((v) => v / ez.reduce((s, x) => s + x, 0));
      const W = ex.attention('a1') as Float64Array;
      w.forEach((v, j) => expect(W[i * 3 + j]).toBeCloseTo(v, 12));
    }
  });

  it('special_op rows replace the rows of special query tokens and special input tokens', () => {
    const stmts: Statement[] = [
      // normal queries attend to the previous position; special queries (<bos>, <sep>) to <bos>
      sel('s1', 'token', 'token', pred('k==q', bin('==', refs.k, refs.q)), pred('k==BOS', bin('==', refs.k, { kind: 'special', name: 'BOS' }))),
      { kind: 'aggregate', name: 'a1', line: 0, selectors: ['s1'], v: 'pos' },
      { kind: 'project', name: 'l1', line: 0, inp: 'token', op: IDENTITY, specialOp: pred('out==EOS', bin('==', refs.out, { kind: 'special', name: 'EOS' })) },
      { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['l1'] },
    ];
    const p = makeProgram(vocab, stmts, { positions: 8 });
    const ex = new Execution(p, '<bos> a b a <sep> b');
    const r = ex.runToEnd();
    const a1 = ex.value('a1');
    const argmaxAt = (i: number) => {
      const row = Array.from(a1?.data.slice(i * 8, i * 8 + 8) ?? []);
      return row.indexOf(Math.max(...row));
    };
    // position 3 ('a') attends to both a's (1 and 3); <sep> at 4 attends to <bos> only
    expect(a1?.data[3 * 8 + 1]).toBeCloseTo(0.5, 12);
    expect(a1?.data[3 * 8 + 3]).toBeCloseTo(0.5, 12);
    expect(argmaxAt(4)).toBe(0);
    expect(a1?.data[4 * 8]).toBe(1);
    expect(r.prediction).toEqual(['<eos>', 'a', 'b', 'a', '<eos>', 'b']);
  });

  it('sigmoid programs predict the tokens with logit > 0', () => {
    const p = makeProgram(
      vocab,
      [
        { kind: 'project', name: 'l1', line: 0, inp: 'token', op: pred('out!=inp', bin('!=', refs.out, refs.inp), 1) },
        { kind: 'project', name: 'l2', line: 0, op: pred('out==BOS||out==PAD', bin('||', bin('==', refs.out, { kind: 'special', name: 'BOS' }), bin('==', refs.out, { kind: 'special', name: 'PAD' })), -1) },
        { kind: 'prediction', name: 'prediction', line: 0, fn: 'sigmoid', terms: ['l1', 'l2'] },
      ],
      { output: 'sigmoid' },
    );
    const ex = new Execution(p, 'a c');
    const r = ex.runToEnd();
    expect(r.prediction).toEqual([
      ['b', 'c', 'd', '<sep>', '<eos>'],
      ['a', 'b', 'd', '<sep>', '<eos>'],
    ]);
    expect(ex.value('prediction')?.data[0]).toBeCloseTo(0.5, 12);
  });
});

describe('run-time problems are RuntimeErrors pointing at the statement', () => {
  const stmts: Statement[] = [
    { kind: 'select', name: 's1', line: 3, q: 'pos', k: 'pos', op: { kind: 'matrix', ref: 'M1' } },
    { kind: 'aggregate', name: 'a1', line: 4, selectors: ['s1'], v: 'token' },
    { kind: 'project', name: 'l1', line: 5, inp: 'a1', op: IDENTITY },
    { kind: 'prediction', name: 'prediction', line: 6, fn: 'softmax', terms: ['l1'] },
  ];
  const p = makeProgram(vocab, stmts, { positions: 4 });

  const caught = (f: () => unknown): RuntimeError => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(RuntimeError);
      return e as RuntimeError;
    }
    throw new Error('no error');
  };

  it('a token outside the vocabulary', () => {
    const e = caught(() => new Execution(p, '<bos> a zz'));
    expect(e.message).toMatch(/input token 'zz' at position 2 is not in the vocabulary/);
    expect(e.statement?.name).toBe('a1');
  });

  it('an input longer than the position range', () => {
    const e = caught(() => new Execution(p, '<bos> a b c d'));
    expect(e.message).toMatch(/5 tokens but the program's positions are 0..3/);
    expect(e.statement?.name).toBe('s1');
  });

  it('a missing matrix, when its statement runs', () => {
    const ex = new Execution(p, '<bos> a');
    const e = caught(() => ex.step());
    expect(e.statement?.line).toBe(3);
    expect(e.message).toMatch(/^line 3 \(s1\): matrix M1 is missing/);
    expect(ex.index).toBe(0);
  });

  it('bad ids, empty input, stepping past the end, cancellation', () => {
    expect(caught(() => new Execution(p, [4, 99])).message).toMatch(/input id 99 at position 1/);
    expect(caught(() => new Execution(p, '   ')).message).toMatch(/the input is empty/);
    const ok = makeProgram(vocab, predict);
    const ex = new Execution(ok, 'a b');
    ex.runToEnd();
    expect(caught(() => ex.step()).message).toMatch(/already finished/);
    const ac = new AbortController();
    const ex2 = new Execution(ok, 'a b', { signal: ac.signal });
    ex2.step();
    ac.abort();
    expect(() => ex2.step()).toThrow(/cancelled/);
    expect(ex2.index).toBe(1);
  });
});

describe('size limits give clear errors instead of exhausting memory', () => {
  it('refuses a label-built op matrix beyond MAX_OP_ENTRIES', () => {
    const p = makeProgram(vocab, predict, { positions: 5000 });
    const pos = inferBases(p).get('pos');
    if (!pos) throw new Error('no pos');
    expect(() => opMatrix(p, prim('first'), pos, pos)).toThrow(/5000x5000, more than 16777216 entries/);
  });

  it('refuses inputs beyond MAX_INPUT_LENGTH', () => {
    const p = makeProgram(vocab, predict, { positions: 10_000 });
    expect(() => new Execution(p, Array.from({ length: 9000 }, () => 0))).toThrow(/at most 8192 are supported/);
  });
});

describe('named matrices', () => {
  it('a matrix rewritten in place is re-analysed by the next run', () => {
    const M = matrix(1, 8, (_, c) => (c === 0 ? 2 : 0));
    const p = makeProgram(
      vocab,
      [
        { kind: 'aggregate', name: 'h', line: 0, selectors: [], v: 'token' },
        // key-only over a dense key: score(j) = M . h(j), through the sparse-row path
        { kind: 'select', name: 's1', line: 0, k: 'h', op: { kind: 'matrix', ref: 'M' } },
        { kind: 'aggregate', name: 'a1', line: 0, selectors: ['s1'], v: 'token' },
        ...predict,
      ],
      { matrices: { M } },
    );
    const scores = () => {
      const ex = new Execution(p, '<bos> a b b');
      ex.runToEnd();
      return Array.from(ex.selector('s1')?.scores.slice(12, 16) ?? []);
    };
    // h at positions 0..3: a = 0, 1/2, 1/3, 1/4; b = 0, 0, 1/3, 1/2
    expect(scores()).toEqual([0, 1, 2 / 3, 0.5]);
    M.data.fill(0);
    M.data[1] = 4;
    expect(scores()).toEqual([0, 0, 4 / 3, 2]);
  });
});
