// Mutated programs and hostile inputs: the interpreter either runs or throws a UserError (ProgramError,
// RuntimeError) with a message; never a TypeError, a RangeError or a hang.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { runProgram } from '../../server/src/interpreter/index';
import { randomProgram } from '../../server/src/interpreter/random';
import type { Matrix, Program, Statement } from '../../server/src/program/types';
import { UserError } from '../../server/src/util/errors';

type Mutation = (p: Program, pick: (n: number) => number) => void;

const names = (p: Program) => ['token', 'pos', 'nope', ...p.statements.map((s) => s.name)];

const mutations: Mutation[] = [
  // rename a reference to another (possibly undefined, later, or selector) name
  (p, pick) => {
    const s = p.statements[pick(p.statements.length)];
    const all = names(p);
    const to = all[pick(all.length)];
    if (s.kind === 'select') s.k = to;
    else if (s.kind === 'aggregate') s.selectors = s.selectors.length ? [to] : [];
    else if (s.kind === 'elementwise') s.inputs[0] = to;
    else if (s.kind === 'project') s.inp = to;
    else s.terms = [to];
  },
  (p, pick) => {
    const s = p.statements[pick(p.statements.length)];
    if (s.kind === 'aggregate') s.v = names(p)[pick(names(p).length)];
  },
  // move a statement
  (p, pick) => {
    const [s] = p.statements.splice(pick(p.statements.length), 1);
    p.statements.splice(pick(p.statements.length + 1), 0, s);
  },
  // duplicate a name
  (p, pick) => {
    const a = p.statements[pick(p.statements.length)];
    const b = p.statements[pick(p.statements.length)];
    (a as { name: string }).name = b.name;
  },
  // hostile scales and matrices
  (p, pick) => {
    const s = p.statements[pick(p.statements.length)];
    const bad = [NaN, Infinity, -1e308, 1e308, 0][pick(5)];
    if ((s.kind === 'select' || s.kind === 'project') && s.op.kind !== 'matrix') s.op = { ...s.op, scale: bad };
  },
  (p, pick) => {
    const refs = [...p.matrices.keys()];
    if (refs.length === 0) return;
    const ref = refs[pick(refs.length)];
    const m = p.matrices.get(ref) as Matrix;
    const choice = pick(4);
    if (choice === 0) p.matrices.delete(ref);
    else if (choice === 1) p.matrices.set(ref, { rows: m.rows + 1, cols: m.cols, data: m.data });
    else if (choice === 2) p.matrices.set(ref, { rows: m.rows, cols: m.cols, data: m.data.slice(1) });
    else p.matrices.set(ref, { rows: m.rows, cols: m.cols, data: m.data.map((v, i) => (i % 3 === 0 ? NaN : v * 1e308)) });
  },
  // element-wise parameters out of range
  (p, pick) => {
    const s = p.statements.find((x) => x.kind === 'elementwise');
    if (!s || s.kind !== 'elementwise') return;
    const fns: Extract<Statement, { kind: 'elementwise' }>['fn'][] = [
      { name: 'exists', index: 99 },
      { name: 'exists', index: -1 },
      { name: 'sharpen', power: -2 },
      { name: 'diff', i: 0, j: 50 },
      { name: 'keep_one', index: 3 },
      { name: 'equal', indices: [] },
      { name: 'balance', which: 'AB', p: 0.5, c: 0 },
      { name: 'cartesian' },
      { name: 'mlp', ref: 'none' },
      { name: 'expr', expr: { kind: 'binary', op: '/', left: { kind: 'num', value: 1 }, right: { kind: 'num', value: 0 } } },
      { name: 'expr', expr: { kind: 'call', fn: 'nope', args: [] } },
      { name: 'expr', expr: { kind: 'index', target: 'token', key: { kind: 'num', value: 1e9 } } },
    ];
    s.fn = fns[pick(fns.length)];
    if (s.fn.name === 'cartesian') s.inputs = ['pos', 'pos', 'pos'];
  },
  // predicates naming the wrong side, unknown specials and tokens
  (p, pick) => {
    const s = p.statements[pick(p.statements.length)];
    const exprs = [
      { kind: 'ref', name: 'inp' },
      { kind: 'ref', name: 'q' },
      { kind: 'token', text: 'zzz' },
      { kind: 'binary', op: '==', left: { kind: 'ref', name: 'k' }, right: { kind: 'special', name: 'SEP' } },
    ] as const;
    if (s.kind === 'select' || s.kind === 'project') s.op = { kind: 'predicate', label: 'x', expr: exprs[pick(exprs.length)], scale: 1 };
  },
  // header damage
  (p, pick) => {
    const h = p.header;
    [() => (h.positions = 0), () => (h.dHead = 0), () => (h.vocab = []), () => (h.positions = 2), () => (h.special = {})][pick(5)]();
  },
  (p) => {
    p.statements = p.statements.filter((s) => s.kind !== 'prediction');
  },
];

describe('interpreter fuzz', () => {
  it('mutated programs and bad inputs give UserErrors, never crashes', () => {
    let ran = 0;
    let refused = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1e6 }),
        fc.array(fc.tuple(fc.nat(mutations.length - 1), fc.array(fc.nat(1000), { minLength: 4, maxLength: 4 })), { maxLength: 3 }),
        fc.oneof(
          { arbitrary: fc.array(fc.integer({ min: 0, max: 8 }), { minLength: 1, maxLength: 24 }), weight: 3 },
          { arbitrary: fc.array(fc.oneof(fc.integer({ min: -2, max: 20 }), fc.double()), { minLength: 0, maxLength: 30 }), weight: 1 },
        ),
        (seed, muts, ids) => {
          const program = randomProgram(seed, { tokens: 5, positions: 24, statements: 12, selectOn: seed % 2 ? 'any' : 'input' });
          for (const [m, picks] of muts) {
            let at = 0;
            mutations[m](program, (n) => (n <= 0 ? 0 : picks[at++ % picks.length] % n));
          }
          try {
            runProgram(program, ids);
            ran++;
          } catch (err) {
            if (!(err instanceof UserError)) throw err;
            expect(err.message.length).toBeGreaterThan(5);
            refused++;
          }
        },
      ),
      { numRuns: 1500 },
    );
    // Both outcomes must occur, or the fuzzer is not exploring.
    expect(ran).toBeGreaterThan(100);
    expect(refused).toBeGreaterThan(100);
  });
});
