import { describe, expect, it } from 'vitest';
import { inferBases, MAX_PRODUCT_SIZE, ProgramError } from '../../server/src/program/bases';
import type { Statement } from '../../server/src/program/types';
import { UserError } from '../../server/src/util/errors';
import { bin, IDENTITY, makeProgram, matrix, pred, refs } from './helpers';

const DIAG_KEY = pred('k==BOS', bin('==', refs.k, { kind: 'special', name: 'BOS' }));

const vocab = ['a', 'b', 'c', '<bos>', '<sep>', '<eos>', '<pad>'];

describe('inferBases', () => {
  it('gives token, pos, aggregates, projections and element-wise bases', () => {
    const p = makeProgram(
      vocab,
      [
        { kind: 'aggregate', name: 'a1', line: 0, selectors: [], v: 'token' },
        { kind: 'elementwise', name: 'h', line: 0, fn: { name: 'harden' }, inputs: ['a1'] },
        { kind: 'elementwise', name: 'e', line: 0, fn: { name: 'exists', index: 1 }, inputs: ['a1'] },
        { kind: 'elementwise', name: 'f', line: 0, fn: { name: 'forall', threshold: 0.9 }, inputs: ['a1'] },
        { kind: 'elementwise', name: 'd', line: 0, fn: { name: 'diff', i: 0, j: 1 }, inputs: ['a1'] },
        { kind: 'elementwise', name: 'bal', line: 0, fn: { name: 'balance', which: 'AB', p: 0.5, c: 0 }, inputs: ['a1'] },
        { kind: 'elementwise', name: 'x', line: 0, fn: { name: 'cartesian' }, inputs: ['e', 'pos'] },
        { kind: 'elementwise', name: 'k1', line: 0, fn: { name: 'keep_one', index: 1 }, inputs: ['e', 'd'] },
        { kind: 'elementwise', name: 'er', line: 0, fn: { name: 'erase' }, inputs: ['e', 'd'] },
        {
          kind: 'elementwise',
          name: 'm',
          line: 0,
          fn: { name: 'expr', expr: { kind: 'binary', op: '*', left: { kind: 'num', value: 2 }, right: { kind: 'index', target: 'a1', key: { kind: 'token', text: 'a' } } } },
          inputs: ['a1'],
        },
        {
          kind: 'elementwise',
          name: 'bo',
          line: 0,
          fn: { name: 'expr', expr: { kind: 'binary', op: '>', left: { kind: 'ref', name: 'm' }, right: { kind: 'num', value: 0.5 } } },
          inputs: ['m'],
        },
        { kind: 'project', name: 'l1', line: 0, inp: 'h', op: IDENTITY },
        { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['l1'] },
      ],
      { positions: 20 },
    );
    const b = inferBases(p);
    expect(b.get('token')).toMatchObject({ kind: 'token', size: 7 });
    expect(b.get('token')?.labels).toEqual(vocab);
    expect(b.get('pos')?.labels.slice(0, 3)).toEqual(['0', '1', '2']);
    expect(b.get('pos')?.size).toBe(20);
    expect(b.get('a1')?.kind).toBe('token');
    expect(b.get('h')?.kind).toBe('token');
    expect(b.get('e')?.size).toBe(2);
    expect(b.get('f')?.size).toBe(8);
    expect(b.get('d')?.size).toBe(12);
    expect(b.get('bal')?.size).toBe(3);
    expect(b.get('x')).toMatchObject({ kind: 'product', size: 40 });
    expect(b.get('x')?.labels[21]).toBe('no b-1');
    expect(b.get('k1')?.size).toBe(12);
    expect(b.get('er')?.size).toBe(1);
    expect(b.get('m')).toMatchObject({ kind: 'numeric', size: 1 });
    expect(b.get('bo')?.labels).toEqual(['false', 'true']);
    expect(b.get('l1')).toMatchObject({ kind: 'token', size: 7 });
    expect(b.has('prediction')).toBe(true);
  });

  it('refuses inconsistent programs with a ProgramError naming the line', () => {
    const bad = (statements: Parameters<typeof makeProgram>[1], extra: Parameters<typeof makeProgram>[2] = {}) => {
      try {
        inferBases(makeProgram(vocab, statements, extra));
      } catch (e) {
        expect(e).toBeInstanceOf(ProgramError);
        expect(e).toBeInstanceOf(UserError);
        return (e as Error).message;
      }
      throw new Error('no error');
    };
    const predict: Statement = { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['l1'] };
    const proj: Statement = { kind: 'project', name: 'l1', line: 0, inp: 'token', op: IDENTITY };
    expect(bad([proj])).toMatch(/no prediction/);
    expect(bad([{ kind: 'aggregate', name: 'a1', line: 0, selectors: [], v: 'zz' }, proj, predict])).toMatch(
      /line 1 \(a1\).*'zz' is not a variable defined earlier/,
    );
    expect(bad([proj, { ...proj }, predict])).toMatch(/line 2.*already defined/);
    expect(
      bad([{ kind: 'select', name: 's1', line: 0, k: 'token', op: DIAG_KEY }, { kind: 'aggregate', name: 'a1', line: 0, selectors: [], v: 's1' }, proj, predict]),
    ).toMatch(/'s1' is a selector/);
    expect(bad([{ kind: 'aggregate', name: 'a1', line: 0, selectors: ['token'], v: 'token' }, proj, predict])).toMatch(
      /'token' is a variable, not a selector/,
    );
    expect(bad([{ kind: 'elementwise', name: 'x', line: 0, fn: { name: 'cartesian' }, inputs: ['pos', 'pos'] }, proj, predict], { positions: 101 })).toMatch(
      new RegExp(`exceeds ${MAX_PRODUCT_SIZE}`),
    );
    expect(bad([{ kind: 'elementwise', name: 'x', line: 0, fn: { name: 'exists', index: 9 }, inputs: ['token'] }, proj, predict])).toMatch(
      /outside the input basis/,
    );
    expect(
      bad([{ kind: 'project', name: 'l1', line: 0, inp: 'token', op: { kind: 'matrix', ref: 'M' } }, predict], { matrices: { M: matrix(3, 7, () => 0) } }),
    ).toMatch(/matrix M is 3x7, expected 7x7/);
    expect(bad([{ kind: 'select', name: 's1', line: 0, q: 'pos', k: 'token', op: DIAG_KEY, specialOp: DIAG_KEY }, proj, predict])).toMatch(
      /special_op needs a token-basis query/,
    );
    expect(bad([proj, { ...predict, terms: ['token'] }])).toMatch(/not a projection/);
    expect(bad([{ kind: 'elementwise', name: 'm', line: 0, fn: { name: 'mlp', ref: 'W' }, inputs: ['token'] }, proj, predict])).toMatch(
      /'W' are missing/,
    );
  });
});
