import { describe, expect, it } from 'vitest';
import { Execution, runBatch, runProgram, RuntimeError } from '../../server/src/interpreter/index';
import { CancelledError } from '../../server/src/util/errors';
import { IDENTITY, makeProgram } from './helpers';

// d-rasp.md 2.4a for the bin_majority vocabulary.
const majority = makeProgram(['0', '1', '<bos>', '<sep>', '<eos>', '<pad>'], [
  { kind: 'aggregate', name: 'a1', line: 1, selectors: [], v: 'token' },
  { kind: 'project', name: 'logits1', line: 2, inp: 'a1', op: IDENTITY },
  { kind: 'prediction', name: 'prediction', line: 3, fn: 'softmax', terms: ['logits1'] },
]);

describe('majority (d-rasp.md 2.4a)', () => {
  it('predicts the prefix mode', () => {
    expect(runProgram(majority, '<bos> 1 0 1 1 <sep>').prediction.at(-1)).toBe('1');
    expect(runProgram(majority, '<bos> 0 0 1 <sep>').prediction.at(-1)).toBe('0');
  });

  it('steps one statement at a time and exposes values', () => {
    const ex = new Execution(majority, '<bos> 1 0');
    expect(ex.index).toBe(0);
    expect(ex.step().name).toBe('a1');
    const a1 = ex.value('a1');
    expect(a1?.n).toBe(3);
    // position 2 sees <bos>, 1, 0: a third each
    expect(Array.from(a1?.data.slice(12, 18) ?? [])).toEqual([1 / 3, 1 / 3, 1 / 3, 0, 0, 0]);
    expect(ex.attention('a1')?.slice(3, 6)).toEqual(new Float64Array([0.5, 0.5, 0]));
    expect(ex.done).toBe(false);
    expect(() => ex.result()).toThrow(RuntimeError);
    const r = ex.runToEnd();
    expect(ex.done).toBe(true);
    expect(r.tokens).toEqual(['<bos>', '1', '0']);
    expect(r.logits.length).toBe(18);
  });
});

describe('Execution inspection', () => {
  it('knows every basis before running and lists computed variables in order', () => {
    const ex = new Execution(majority, '<bos> 1');
    expect(ex.basisOf('logits1')?.size).toBe(6);
    expect(ex.basisOf('nothing')).toBeUndefined();
    expect(ex.variables()).toEqual(['token', 'pos']);
    ex.step();
    expect(ex.variables()).toEqual(['token', 'pos', 'a1']);
    // token and pos read densely on demand
    expect(Array.from(ex.value('pos')?.data.slice(0, 3) ?? [])).toEqual([1, 0, 0]);
    expect(ex.value('pos')?.data.length).toBe(2 * 160);
  });
});

describe('runBatch', () => {
  it('runs many inputs with one plan and stops on an aborted signal', () => {
    const inputs = [
      [2, 1, 0, 1, 1, 3],
      [2, 0, 0, 1, 3],
    ];
    expect(runBatch(majority, inputs).map((r) => r.prediction.at(-1))).toEqual(['1', '0']);
    const ac = new AbortController();
    ac.abort();
    expect(() => runBatch(majority, inputs, { signal: ac.signal })).toThrow(CancelledError);
  });
});
