// The debugger's watch-expression language on hand-built values (the DAP tests cover it on real programs).
import { describe, expect, it } from 'vitest';
import { ExpressionError, evaluateExpression, parseExpression, type DebugValue, type EvalScope, type Table } from '../../client/src/debug/expression';

// Two positions over the basis [x, y]: position 0 = (0.25, 0.75), position 1 = (1, 0).
const v: Table = {
  kind: 'table',
  title: 'v',
  rowLabels: ['0: "x"', '1: "y"'],
  colLabels: ['x', 'y'],
  data: Float64Array.from([0.25, 0.75, 1, 0]),
  labelledColumns: true,
  quoted: true,
};
// A causal 2 x 2 selector.
const s: Table = { kind: 'table', title: 's', rowLabels: v.rowLabels, colLabels: v.rowLabels, data: Float64Array.from([3, 99, 1, 2]), labelledColumns: false, causal: true };

const scope: EvalScope = {
  lookup: (name) => ({ v, s })[name],
  names: () => ['v', 's'],
};

const evaluate = (text: string): DebugValue => evaluateExpression(text, scope);
const num = (text: string): number => {
  const r = evaluate(text);
  if (r.kind !== 'number') throw new Error(`${text} gave a ${r.kind}`);
  return r.value;
};

describe('watch expressions', () => {
  it('indexes by position, by basis label and by basis index', () => {
    expect(num('v[0]["y"]')).toBe(0.75);
    expect(num('v[0][1]')).toBe(0.75);
    expect(num("v['x'][1]")).toBe(1);
    expect(evaluate('v[1]')).toMatchObject({ kind: 'vector', labels: ['x', 'y'], data: [1, 0] });
    expect(evaluate('v["x"]')).toMatchObject({ kind: 'vector', labels: ['0: "x"', '1: "y"'], data: [0.25, 1] });
  });

  it('keeps selector rows causal', () => {
    expect(evaluate('s[0]')).toMatchObject({ data: [3] });
    expect(num('s[1][0]')).toBe(1);
    expect(() => evaluate('s[0][1]')).toThrow(/out of range/);
    expect(() => evaluate('s["x"]')).toThrow(/indexed by a query position/);
  });

  it('applies precedence, comparisons, logic and element-wise vector arithmetic', () => {
    expect(num('1 + 2 * 3 - 4 / 2')).toBe(5);
    expect(num('(1 + 2) * 3 % 4')).toBe(1);
    expect(num('-v[0]["x"] + 1')).toBe(0.75);
    expect(num('v[0]["y"] > 0.5 && !(v[1]["y"] > 0)')).toBe(1);
    expect(num('1 == 2 || 2 <= 2')).toBe(1);
    expect(evaluate('v["x"] * 4 + v["y"]')).toMatchObject({ kind: 'vector', data: [1.75, 4] });
    expect(num('argmax(v[0]) == "y"')).toBe(1);
    expect(num('sum(v[0]) + max(v["x"]) + min(v["x"]) + len(v[1]) + mean(v["x"])')).toBe(1 + 1 + 0.25 + 2 + 0.625);
    expect(evaluate('abs(v[0] - 1)')).toMatchObject({ data: [0.75, 0.25] });
  });

  it('reports unknown names, labels, functions and syntax errors', () => {
    expect(() => evaluate('w[0]')).toThrow(/'w' is not defined at this point \(known: v, s\)/);
    expect(() => evaluate('v[0]["z"]')).toThrow(/"z" is not a label of v\[0\]/);
    expect(() => evaluate('v[2]')).toThrow(/index 2 is out of range for v \(0\.\.1\)/);
    expect(() => evaluate('foo(1)')).toThrow(/unknown function 'foo'/);
    expect(() => evaluate('v[0] + v')).toThrow(ExpressionError);
    expect(() => parseExpression('1 +')).toThrow(/unexpected end/);
    expect(() => parseExpression('v[0')).toThrow(/expected '\]'/);
    expect(() => parseExpression('"open')).toThrow(/unterminated string/);
    expect(() => parseExpression('1 $ 2')).toThrow(/unexpected '\$'/);
    expect(() => parseExpression('')).toThrow(/empty expression/);
  });
});
