import { describe, expect, it } from 'vitest';
import { inferBases } from '../../server/src/program/bases';
import type { Statement } from '../../server/src/program/types';
import { features, mlpCandidates } from '../../server/src/decompile/primitives/features';
import { eliminateDeadCode, mergeIdentical } from '../../server/src/decompile/primitives/graph';
import { UNIFORM, kIsQMinus } from '../../server/src/decompile/primitives/library';
import { dense, fvu, leastSquares, matmul } from '../../server/src/decompile/primitives/linalg';
import { attributeNeurons } from '../../server/src/decompile/primitives/neurons';
import { runOpaqueMlp } from '../../server/src/decompile/primitives/opaque';
import { rebaseReaders } from '../../server/src/decompile/primitives/rewrite';
import { matrix, noise, program, stepMlp } from './helpers';

const tokenBasis = { kind: 'token' as const, size: 6, labels: ['a', 'b', '<bos>', '<sep>', '<eos>', '<pad>'] };

function simplexRows(rows: number, size: number, seed: number): ReturnType<typeof dense> {
  const rnd = noise(seed);
  const out = dense(rows, size);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < size; c++) {
      const v = (rnd() + 1) ** 3;
      out.data[r * size + c] = v;
      s += v;
    }
    for (let c = 0; c < size; c++) out.data[r * size + c] /= s;
  }
  return out;
}

describe('least squares and FVU', () => {
  it('recovers an exact linear map and reports FVU 0, and a poor one above 0.5', () => {
    const f = simplexRows(200, 4, 1);
    const c = matrix(4, 3, (r, k) => r * 2 - k + 0.5);
    const y = matmul(f, { rows: 4, cols: 3, data: Float64Array.from(c.data) });
    const fit = leastSquares(f, y);
    for (let i = 0; i < 12; i++) expect(fit.data[i]).toBeCloseTo(c.data[i], 6);
    expect(fvu(matmul(f, fit), y)).toBeLessThan(1e-10);
    const constant = dense(200, 1, new Array(200).fill(1));
    expect(fvu(matmul(constant, leastSquares(constant, y)), y)).toBeGreaterThan(0.5);
  });
});

describe('MLP primitive features', () => {
  it('diff bins the difference, flags small sums, and matches the bases labels size', () => {
    const xs = [dense(3, 6, [0.5, 0.1, 0.4, 0, 0, 0, 0.1, 0.05, 0.85, 0, 0, 0, 0.3, 0.6, 0.1, 0, 0, 0])];
    const f = features({ kind: 'fn', fn: { name: 'diff', i: 0, j: 1 }, label: 'diff' }, xs, [tokenBasis]);
    expect(f.cols).toBe(12);
    // 0.5 - 0.1 = 0.4 -> bin [0.333, 0.467) = index 8; second row sums to 0.15 < 0.2 -> flag; third -0.3 -> [-0.333,-0.2) = 3
    expect(Array.from(f.data.subarray(0, 12)).indexOf(1)).toBe(8);
    expect(Array.from(f.data.subarray(12, 24)).indexOf(1)).toBe(11);
    expect(Array.from(f.data.subarray(24, 36)).indexOf(1)).toBe(3);
  });

  it('offers diff and 01 balance only for attention mixtures over two normal tokens, equal over normal tokens', () => {
    const specialIds = new Set([2, 3, 4, 5]);
    const viaAttention = mlpCandidates({ inputs: [tokenBasis], names: ['a1'], specialIds, viaAttention: [true], maxProduct: 400 }).map((c) => c.label);
    expect(viaAttention).toContain('diff 0 1');
    expect(viaAttention).toContain('01 balance 0.05');
    expect(viaAttention).toContain('equal');
    const plain = mlpCandidates({ inputs: [tokenBasis], names: ['a1'], specialIds, viaAttention: [false], maxProduct: 400 }).map((c) => c.label);
    expect(plain).not.toContain('diff 0 1');
    expect(plain[0]).toBe('no_op');
    const multi = mlpCandidates({ inputs: [tokenBasis, tokenBasis], names: ['a1', 'token'], specialIds, viaAttention: [true, false], maxProduct: 400 }).map((c) => c.label);
    expect(multi.slice(0, 4)).toEqual(['erase', 'keep_one a1', 'keep_one token', 'combine']);
    // unsplit MLPs: single-input primitives on each input alone; diff only where attention mixes tokens
    expect(multi).toContain('diff 0 1 of a1');
    expect(multi).toContain('harden of token');
    expect(multi).not.toContain('diff 0 1 of token');
  });

  it('fits a planted step MLP best by exists, with a near-exact readout', () => {
    const mlp = stepMlp(6, [0], 0.1);
    const x = simplexRows(400, 6, 7);
    const y = runOpaqueMlp(mlp, [x]).output;
    const scores = mlpCandidates({ inputs: [tokenBasis], names: ['a1'], specialIds: new Set([2, 3, 4, 5]), viaAttention: [true], maxProduct: 400 })
      // pure primitives (an additive one, f(x) + linear x, fits at least as well as its f)
      .filter((cand) => !(cand.kind === 'fn' && cand.additive))
      .map((cand) => {
      const f = features(cand, [x], [tokenBasis]);
      return { label: cand.label, fvu: fvu(matmul(f, leastSquares(f, y)), y) };
    });
    scores.sort((a, b) => a.fvu - b.fvu);
    expect(scores[0].label).toBe('exists 0');
    expect(scores[0].fvu).toBeLessThan(0.05); // only rows inside the steep ramp (x0 in 0.1..0.105) miss
    expect(scores.find((s) => s.label === 'exists 1')?.fvu).toBeGreaterThan(0.6);
  });
});

describe('neuron attribution', () => {
  it('finds exactly the planted neurons, and ablating the rest leaves the output intact', () => {
    const mlp = stepMlp(6, [0, 3], 0.2);
    const x = simplexRows(500, 6, 3);
    const a = attributeNeurons(mlp, [x], { coverage: 0.99 });
    expect(a.neurons.map((n) => n.index).sort((p, q) => p - q)).toEqual([0, 1, 2, 3]);
    expect(a.keptFvu).toBeLessThan(1e-6);
    const total = a.neurons.reduce((s, n) => s + (n.score ?? 0), 0);
    expect(total).toBeGreaterThan(0.99);
  });
});

describe('dead-code elimination and merging', () => {
  const sel = (name: string, op: Statement & { kind: 'select' } extends { op: infer O } ? O : never): Statement => ({
    kind: 'select', name, line: 0, q: 'pos', k: 'pos', op,
  });
  it('drops uniform selects (aggregate becomes s=[]), unused lines and unreferenced matrices', () => {
    const p = program(
      [
        sel('s1', UNIFORM),
        { kind: 'aggregate', name: 'a1', line: 0, selectors: ['s1'], v: 'token' },
        sel('s2', { kind: 'matrix', ref: 'M' }),
        { kind: 'aggregate', name: 'a2', line: 0, selectors: ['s2'], v: 'token' },
        { kind: 'project', name: 'logits1', line: 0, inp: 'a1', op: { kind: 'matrix', ref: 'B' } },
        { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['logits1'] },
      ],
      { M: matrix(16, 16, () => 1), B: matrix(6, 6, (r, c) => (r === c ? 1 : 0)) },
    );
    const out = eliminateDeadCode(p);
    expect(out.statements.map((s) => s.name)).toEqual(['a1', 'logits1', 'prediction']);
    expect(out.statements[0]).toMatchObject({ kind: 'aggregate', selectors: [] });
    expect([...out.matrices.keys()]).toEqual(['B']);
    expect(() => inferBases(out)).not.toThrow();
    // the input is untouched
    expect(p.statements).toHaveLength(6);
  });

  it('merges four heads that compute the same aggregate into one and sums identical projections', () => {
    const stmts: Statement[] = [];
    for (let h = 1; h <= 4; h++) stmts.push({ kind: 'aggregate', name: `a${h}`, line: 0, selectors: [], v: 'token', provenance: { layer: 0, head: h - 1, mlp: false, paths: { v: 'wte' } } });
    for (let h = 1; h <= 4; h++) stmts.push({ kind: 'project', name: `logits${h}`, line: 0, inp: `a${h}`, op: { kind: 'predicate', label: 'inp==out', expr: { kind: 'binary', op: '==', left: { kind: 'ref', name: 'inp' }, right: { kind: 'ref', name: 'out' } }, scale: 1e4 } });
    stmts.push({ kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['logits1', 'logits2', 'logits3', 'logits4'] });
    const { program: out, merged } = mergeIdentical(program(stmts));
    expect(merged).toBe(6);
    expect(out.statements.map((s) => s.name)).toEqual(['a1', 'logits1', 'prediction']);
    expect(out.statements[1]).toMatchObject({ inp: 'a1', op: { scale: 4e4 } });
    expect(out.statements[2]).toMatchObject({ terms: ['logits1'] });
  });

  it('does not merge two identical selects summed by one aggregate', () => {
    const p = program([
      sel('s1', kIsQMinus(1)),
      sel('s2', kIsQMinus(1)),
      { kind: 'aggregate', name: 'a1', line: 0, selectors: ['s1', 's2'], v: 'token' },
      { kind: 'project', name: 'logits1', line: 0, inp: 'a1', op: UNIFORM },
      { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['logits1'] },
    ]);
    expect(mergeIdentical(p).merged).toBe(0);
  });
});

describe('re-basing readers', () => {
  it('gives the same scores through C·A, A·Cᵀ and C·B as the residual values did (to float32 precision)', () => {
    const rnd = noise(11);
    const c = dense(3, 5, Array.from({ length: 15 }, () => rnd()));
    const A = matrix(5, 6, () => rnd());
    const K = matrix(16, 5, () => rnd());
    const B = matrix(5, 6, () => rnd());
    const p = program(
      [
        { kind: 'elementwise', name: 'm1', line: 0, fn: { name: 'mlp', ref: 'W' }, inputs: ['token'] },
        { kind: 'select', name: 's1', line: 0, q: 'm1', k: 'token', op: { kind: 'matrix', ref: 'A' } },
        { kind: 'select', name: 's2', line: 0, q: 'pos', k: 'm1', op: { kind: 'matrix', ref: 'K' } },
        { kind: 'aggregate', name: 'a1', line: 0, selectors: ['s1', 's2'], v: 'm1' },
        { kind: 'project', name: 'logits1', line: 0, inp: 'a1', op: { kind: 'matrix', ref: 'B' } },
        { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['logits1'] },
      ],
      { A, K, B },
    );
    const f = [0.2, 0.5, 0.3];
    const v = matmul(dense(1, 3, f), c); // residual value of m1 = f·C
    const out = rebaseReaders(p, 'm1', 'h1', c, 'harden');
    const s1 = out.statements[1];
    const s2 = out.statements[2];
    const a1 = out.statements[3];
    const l1 = out.statements[4];
    expect(s1).toMatchObject({ q: 'h1', k: 'token' });
    expect(s2).toMatchObject({ q: 'pos', k: 'h1' });
    expect(a1).toMatchObject({ v: 'h1' });
    expect(l1).toMatchObject({ inp: 'a1' });
    const get = (s: Statement): ReturnType<typeof dense> => {
      if ((s.kind !== 'select' && s.kind !== 'project') || s.op.kind !== 'matrix') throw new Error('expected a matrix op');
      const m = out.matrices.get(s.op.ref);
      if (!m) throw new Error('missing');
      return dense(m.rows, m.cols, m.data);
    };
    const before = matmul(v, dense(5, 6, A.data));
    const after = matmul(dense(1, 3, f), get(s1));
    for (let j = 0; j < 6; j++) expect(after.data[j]).toBeCloseTo(before.data[j], 5);
    const kBefore = matmul(dense(16, 5, K.data), { rows: 5, cols: 1, data: v.data });
    const kAfter = matmul(get(s2), { rows: 3, cols: 1, data: Float64Array.from(f) });
    for (let j = 0; j < 16; j++) expect(kAfter.data[j]).toBeCloseTo(kBefore.data[j], 5);
    const lAfter = matmul(dense(1, 3, f), get(l1));
    const lBefore = matmul(v, dense(5, 6, B.data));
    for (let j = 0; j < 6; j++) expect(lAfter.data[j]).toBeCloseTo(lBefore.data[j], 5);
  });
});
