// The interpreter's fast paths (kernels.ts) against the plain dense evaluation, on random programs built to reach
// them: averages of averages (a value that is itself a running mean, aggregated again: the suffix-sum route),
// uniform rows (running means), sparse and dense value rows, one-hot lookups, query classes sharing exps, heads
// shared by several aggregates (stored weights), and scores or weights inspected in the middle of a run.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Execution, RuntimeError, runProgram } from '../../server/src/interpreter/index';
import { emptyPaths, type PathCounts } from '../../server/src/interpreter/kernels';
import type { Basis, Op, Program, Statement } from '../../server/src/program/types';
import { inferBases } from '../../server/src/program/bases';
import { Rng } from '../../server/src/util/rng';
import { bin, denseReference, makeProgram, matrix, num, pred, prim, refs } from './helpers';

const TOKENS = ['0', '1', '2', '3', '4', '<bos>', '<sep>', '<eos>', '<pad>'];
const V = TOKENS.length;
const P = 24;

/**
 * A random program that nests aggregates: values are mostly earlier aggregates, attention mixes soft (scale 0.5..5)
 * and hard (1e4) selects over token, position and derived bases, some aggregates attend uniformly, some reuse an
 * earlier head's selectors.
 */
function nestedProgram(seed: number, dHead: number | undefined): Program {
  const rng = new Rng(seed);
  const bases = new Map<string, Basis>([
    ['token', { kind: 'token', size: V, labels: TOKENS }],
    ['pos', { kind: 'pos', size: P, labels: [] }],
  ]);
  const statements: Statement[] = [];
  const matrices: Record<string, ReturnType<typeof matrix>> = {};
  const values = ['token', 'pos'];
  const aggregates: string[] = [];
  const heads: string[][] = [];
  const logits: string[] = [];
  let counter = 0;
  const soft = () => rng.choice([0.5, 1, 3, 5, 1e4]);
  const add = (s: Statement) => statements.push({ ...s, line: statements.length + 1 } as Statement);
  const randomMatrix = (rows: number, cols: number, scale: number) => {
    const name = `M${++counter}`;
    matrices[name] = matrix(rows, cols, () => (rng.next() < 0.4 ? Math.round((rng.next() * 2 - 1) * scale * 4) / 4 : 0));
    return { kind: 'matrix', ref: name } as Op;
  };
  const keyOnlyOp = (kb: Basis): Op =>
    rng.choice([
      () => prim(rng.choice(['first', 'last'] as const), soft()),
      () => prim('uniform', 1),
      () => (kb.kind === 'token' ? pred('k==BOS', bin('==', refs.k, { kind: 'special', name: 'BOS' }), soft()) : pred('k==0', bin('==', refs.k, num(0)), soft())),
    ])();
  const pairOp = (qb: Basis, kb: Basis): Op => {
    const options: (() => Op)[] = [
      () => pred('k==q', bin('==', refs.k, refs.q), soft()),
      () => pred('k<=q', bin('<=', refs.k, refs.q), soft()),
      () => prim(rng.choice(['first', 'last', 'uniform'] as const), soft()),
      () => randomMatrix(qb.size, kb.size, rng.choice([1, 5])),
    ];
    if (qb.kind === 'pos' && kb.kind === 'pos') {
      options.push(() => pred('k==q-1', bin('==', refs.k, bin('-', refs.q, num(1))), soft()));
      options.push(() => pred('-(q-k)*(q-k)', { kind: 'unary', op: '-', arg: bin('*', bin('-', refs.q, refs.k), bin('-', refs.q, refs.k)) }, rng.choice([0.05, 0.5])));
    }
    return rng.choice(options)();
  };
  const target = rng.int(5, 14);
  while (statements.length < target) {
    const roll = rng.next();
    if (roll < 0.7 || aggregates.length === 0) {
      let selectors: string[];
      const how = rng.next();
      if (how < 0.2) selectors = [];
      else if (how < 0.35 && heads.length > 0) selectors = rng.choice(heads);
      else {
        selectors = [];
        for (let t = rng.int(1, 2); t > 0; t--) {
          const k = rng.choice(values);
          const kb = bases.get(k) as Basis;
          const name = `s${++counter}`;
          if (rng.next() < 0.3) add({ kind: 'select', name, line: 0, k, op: keyOnlyOp(kb) });
          else {
            const q = rng.choice(values);
            add({ kind: 'select', name, line: 0, q, k, op: pairOp(bases.get(q) as Basis, kb) });
          }
          selectors.push(name);
        }
        heads.push(selectors);
      }
      const v = aggregates.length > 0 && rng.next() < 0.7 ? rng.choice(aggregates) : rng.choice(values);
      const name = `a${++counter}`;
      add({ kind: 'aggregate', name, line: 0, selectors, v });
      bases.set(name, bases.get(v) as Basis);
      values.push(name);
      aggregates.push(name);
    } else if (roll < 0.8) {
      const x = rng.choice(aggregates);
      const name = `h${++counter}`;
      const fn = rng.next() < 0.5 ? ({ name: 'harden' } as const) : ({ name: 'sharpen', power: 2 } as const);
      add({ kind: 'elementwise', name, line: 0, fn, inputs: [x] });
      bases.set(name, bases.get(x) as Basis);
      values.push(name);
    } else {
      const inp = rng.choice(values);
      const name = `logits${++counter}`;
      add({ kind: 'project', name, line: 0, inp, op: randomMatrix((bases.get(inp) as Basis).size, V, 2) });
      logits.push(name);
    }
  }
  const last = aggregates[aggregates.length - 1];
  add({ kind: 'project', name: 'readout', line: 0, inp: last, op: randomMatrix((bases.get(last) as Basis).size, V, 2) });
  add({ kind: 'project', name: 'tokens', line: 0, inp: 'token', op: pred('inp==out', bin('==', refs.inp, refs.out), 2) });
  add({ kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: [...logits, 'readout', 'tokens'] });
  const program = makeProgram(TOKENS, statements, { positions: P, matrices, ...(dHead !== undefined ? { dHead } : {}) });
  inferBases(program);
  return program;
}

function close(a: number, b: number, scale: number): boolean {
  return Math.abs(a - b) <= 1e-9 * (1 + Math.abs(b) + scale);
}

const inputArb = fc
  .array(fc.integer({ min: 0, max: 4 }), { minLength: 0, maxLength: P - 1 })
  .map((rest) => [5, ...rest]); // <bos> first, like the tasks' inputs

describe('interpreter fast paths', () => {
  it('agree with the dense evaluation on nested-aggregate programs (values, scores, weights, logits)', () => {
    const paths = emptyPaths();
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.constantFrom(undefined, 4, 16),
        inputArb,
        fc.boolean(),
        (seed, dHead, ids, inspectEarly) => {
          const program = nestedProgram(seed, dHead);
          const ref = denseReference(program, ids);
          const ex = new Execution(program, ids);
          // Asking for a selector's scores or an aggregate's weights right after its line (as the debugger does)
          // must not change anything that follows.
          while (!ex.done) {
            const st = ex.step();
            if (inspectEarly && st.kind === 'select') ex.selector(st.name);
            if (inspectEarly && st.kind === 'aggregate') ex.attention(st.name);
          }
          const result = ex.result();
          for (const [key, v] of Object.entries(ex.paths)) paths[key as keyof PathCounts] += v;
          for (const [name, want] of ref) {
            const got =
              name === 'logits'
                ? result.logits
                : name.startsWith('select ')
                  ? ex.selector(name.slice(7))?.scores
                  : name.startsWith('attention ')
                    ? ex.attention(name.slice(10))
                    : ex.value(name)?.data;
            expect(got, name).toBeDefined();
            const scale = want.reduce((m, x) => Math.max(m, Math.abs(x)), 0) * 1e-3;
            (got as Float64Array).forEach((x, idx) => {
              if (!close(x, want[idx], scale)) throw new Error(`seed ${seed}: ${name}[${idx}]: ${x} vs reference ${want[idx]}`);
            });
          }
        },
      ),
      { numRuns: 150 },
    );
    // Every path must have been taken, or this test is not testing it.
    for (const [key, v] of Object.entries(paths)) expect(v, key).toBeGreaterThan(0);
  });

  it('are causal: a prefix of the input gives bit-identical values, scores and weights', () => {
    // Every route decision for row i may depend only on rows <= i, or a longer input would change earlier numbers.
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), fc.constantFrom(undefined, 4), inputArb, fc.nat(), (seed, dHead, ids, at) => {
        const program = nestedProgram(seed, dHead);
        const cut = 1 + (at % ids.length);
        const full = new Execution(program, ids);
        const part = new Execution(program, ids.slice(0, cut));
        full.runToEnd();
        part.runToEnd();
        for (const st of program.statements) {
          const pairs: [ArrayLike<number> | undefined, ArrayLike<number> | undefined, number, number][] = [];
          if (st.kind === 'select') pairs.push([full.selector(st.name)?.scores, part.selector(st.name)?.scores, ids.length, cut]);
          else if (st.kind === 'aggregate') pairs.push([full.attention(st.name), part.attention(st.name), ids.length, cut]);
          const v = full.value(st.name);
          if (v) pairs.push([v.data, part.value(st.name)?.data, v.basis.size, v.basis.size]);
          for (const [a, b, strideA, strideB] of pairs) {
            for (let i = 0; i < cut; i++) {
              for (let c = 0; c < strideB; c++) {
                // Selector rows of the prefix stop at its own length; compare the keys both runs have.
                if (strideA !== strideB && c >= cut) break;
                const x = (a as ArrayLike<number>)[i * strideA + c];
                const y = (b as ArrayLike<number>)[i * strideB + c];
                // (0 and -0 count as equal: an op matrix's -0 entry may come out as either, harmlessly.)
                if (x !== y && !(Number.isNaN(x) && Number.isNaN(y))) throw new Error(`seed ${seed}, dHead ${dHead}, input ${ids.join(" ")}, cut ${cut}: ${st.name}[${i}, ${c}] is ${x} in the full run, ${y} in the prefix`);
              }
            }
          }
        }
      }),
      // CAUSAL_RUNS=20000 for a longer search.
      { numRuns: Number(process.env.CAUSAL_RUNS ?? 300) },
    );
  });

  it('an average of averages takes the suffix-sum route and equals the dense product', () => {
    // a1 = running mean of pos (dense, lower triangular); a2 = soft attention over a1.
    const program = makeProgram(
      TOKENS,
      [
        { kind: 'aggregate', name: 'a1', line: 0, selectors: [], v: 'pos' },
        { kind: 'select', name: 's1', line: 0, q: 'token', k: 'pos', op: prim('first', 3) },
        { kind: 'select', name: 's2', line: 0, q: 'pos', k: 'pos', op: pred('k<=q', bin('<=', refs.k, refs.q), 0.5) },
        { kind: 'aggregate', name: 'a2', line: 0, selectors: ['s1', 's2'], v: 'a1' },
        { kind: 'project', name: 'l1', line: 0, inp: 'a2', op: { kind: 'matrix', ref: 'B' } },
        { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['l1'] },
      ],
      { positions: P, dHead: 4, matrices: { B: matrix(P, V, (r, c) => ((r * 7 + c * 3) % 5) - 2) } },
    );
    const ids = [5, 1, 2, 0, 3, 3, 4, 1, 0, 2, 2, 1, 4, 0, 3, 1, 2, 0, 1, 4];
    const ex = new Execution(program, ids);
    ex.runToEnd();
    expect(ex.paths.suffix).toBeGreaterThan(ids.length / 2);
    const ref = denseReference(program, ids);
    const want = ref.get('a2') as Float64Array;
    const got = ex.value('a2')?.data as Float64Array;
    want.forEach((x, idx) => expect(Math.abs(got[idx] - x)).toBeLessThan(1e-12));
    expect(Array.from(ex.attention('a2') as Float64Array).every((x, idx) => Math.abs(x - (ref.get('attention a2') as Float64Array)[idx]) < 1e-12)).toBe(true);
  });

  it('a head shared by two aggregates computes its weights once and gives both the same weights', () => {
    const program = makeProgram(
      TOKENS,
      [
        { kind: 'select', name: 's1', line: 0, q: 'token', k: 'token', op: pred('k==q', bin('==', refs.k, refs.q), 2) },
        { kind: 'aggregate', name: 'a1', line: 0, selectors: ['s1'], v: 'pos' },
        { kind: 'aggregate', name: 'a2', line: 0, selectors: ['s1'], v: 'token' },
        { kind: 'project', name: 'l1', line: 0, inp: 'a2', op: pred('inp==out', bin('==', refs.inp, refs.out)) },
        { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['l1'] },
      ],
      { positions: P },
    );
    const ids = [5, 1, 2, 1, 3, 1, 2];
    const ex = new Execution(program, ids);
    ex.runToEnd();
    expect(ex.paths.storedRows).toBe(ids.length);
    expect(ex.attention('a1')).toEqual(ex.attention('a2'));
    // Query token 1 at position 5 attends to the three 1s (score 2 each) over the rest (score 0).
    const row = Array.from((ex.attention('a1') as Float64Array).slice(5 * ids.length, 6 * ids.length));
    const e = Math.exp(2);
    const sum = 3 * e + 3;
    [1, e, 1, e, 1, e, 0].forEach((x, j) => expect(row[j]).toBeCloseTo(x / sum, 14));
  });

  it('rows of one query class reuse their exps and give the same weights as computing each', () => {
    // Key-only `first` at a soft scale: the row maximum stays at key 0, so every later row reuses earlier exps.
    const program = makeProgram(
      TOKENS,
      [
        { kind: 'select', name: 's1', line: 0, k: 'pos', op: prim('first', 40) },
        { kind: 'aggregate', name: 'a1', line: 0, selectors: ['s1'], v: 'pos' },
        { kind: 'project', name: 'l1', line: 0, inp: 'token', op: pred('inp==out', bin('==', refs.inp, refs.out)) },
        { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['l1'] },
      ],
      { positions: P },
    );
    const ids = Array.from({ length: P }, (_, i) => (i === 0 ? 5 : i % 5));
    const ex = new Execution(program, ids);
    ex.runToEnd();
    expect(ex.paths.reusedExps).toBeGreaterThan((P * (P - 1)) / 2 - P);
    const W = ex.attention('a1') as Float64Array;
    for (let i = 0; i < P; i++) {
      // Scores 40 (P - j) / P stay within 40 of the maximum: no weight is dropped.
      const e = Array.from({ length: i + 1 }, (_, j) => Math.exp((40 * (P - j)) / P - 40));
      const sum = e.reduce((s, x) => s + x, 0);
      for (let j = 0; j <= i; j++) expect(Math.abs(W[i * P + j] - e[j] / sum)).toBeLessThan(1e-15);
    }
  });

  it('a non-finite score is a RuntimeError at the aggregate, naming the query and key', () => {
    const program = makeProgram(
      TOKENS,
      [
        { kind: 'select', name: 's1', line: 0, q: 'token', k: 'pos', op: { kind: 'matrix', ref: 'M' } },
        { kind: 'aggregate', name: 'a1', line: 0, selectors: ['s1'], v: 'token' },
        { kind: 'project', name: 'l1', line: 0, inp: 'a1', op: pred('inp==out', bin('==', refs.inp, refs.out)) },
        { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['l1'] },
      ],
      { positions: P, matrices: { M: matrix(V, P, (r, c) => (r === 2 && c === 1 ? NaN : 1)) } },
    );
    expect(() => runProgram(program, [5, 0, 2, 2])).toThrow(RuntimeError);
    expect(() => runProgram(program, [5, 0, 2, 2])).toThrow(/line 2 \(a1\): the attention score of query 2 on key 1 is NaN/);
  });
});
