// The blocked kernels against plain one-at-a-time evaluations, bit for bit: the opaque-MLP kernel (interpreter
// applyMlp, blocked over positions; runOpaqueMlp uses it with the hidden activations) with dense and one-hot inputs
// (repeated one-hot inputs share one evaluation), the neuron ablation, and the fits' matrix product.
import { describe, expect, it } from 'vitest';
import { fvu, matmul } from '../../server/src/decompile/primitives/linalg';
import { attributeNeurons } from '../../server/src/decompile/primitives/neurons';
import { runOpaqueMlp } from '../../server/src/decompile/primitives/opaque';
import { applyMlp, geluNew, type Rows } from '../../server/src/interpreter/elementwise';
import type { Basis, OpaqueMlp } from '../../server/src/program/types';
import { noise, randomMlp } from './helpers';

function reference(mlp: OpaqueMlp, xs: { data: Float64Array; size: number }[], n: number): { y: Float64Array; hidden: Float64Array } {
  const dIn = mlp.fcW.rows;
  const H = mlp.fcW.cols;
  const d = mlp.projW.cols;
  const y = new Float64Array(n * d);
  const hidden = new Float64Array(n * H);
  const invStd = 1 / Math.sqrt(mlp.lnVariance + mlp.lnEps);
  for (let i = 0; i < n; i++) {
    const inp = new Float64Array(dIn);
    if (mlp.constant) inp.set(mlp.constant);
    xs.forEach((x, k) => {
      for (let r = 0; r < x.size; r++) {
        const w = x.data[i * x.size + r];
        if (w === 0) continue;
        for (let c = 0; c < dIn; c++) inp[c] += w * mlp.inputEmbeddings[k].data[r * dIn + c];
      }
    });
    let mean = 0;
    for (let c = 0; c < dIn; c++) mean += inp[c];
    mean /= dIn;
    for (let c = 0; c < dIn; c++) inp[c] = (inp[c] - mean) * mlp.lnGamma[c] * invStd;
    const h = Float64Array.from(mlp.fcB);
    for (let c = 0; c < dIn; c++) {
      if (inp[c] === 0) continue;
      for (let u = 0; u < H; u++) h[u] += inp[c] * mlp.fcW.data[c * H + u];
    }
    for (let c = 0; c < d; c++) y[i * d + c] = mlp.projB[c];
    for (let u = 0; u < H; u++) {
      const g = geluNew(h[u]);
      hidden[i * H + u] = g;
      if (g === 0) continue;
      for (let c = 0; c < d; c++) y[i * d + c] += g * mlp.projW.data[u * d + c];
    }
  }
  return { y, hidden };
}

describe('opaque MLP kernel', () => {
  it('gives, blocked over positions, exactly the per-position numbers (dense, one-hot and repeated inputs)', () => {
    const rnd = noise(5);
    for (const n of [1, 7, 8, 9, 23]) {
      const sizes = [6, 5];
      const mlp = randomMlp(n, sizes, 12, 40, n % 2 === 1);
      // input 0 one-hot (with repeats), input 1 dense with zeros
      const hot = Int32Array.from({ length: n }, () => Math.floor(((rnd() + 1) / 2) * 3));
      const x0 = new Float64Array(n * 6);
      hot.forEach((h, i) => (x0[i * 6 + h] = 1));
      const x1 = Float64Array.from({ length: n * 5 }, () => (rnd() > 0.3 ? rnd() : 0));
      const basis = (size: number): Basis => ({ kind: 'feature', size, labels: [] });
      const want = reference(mlp, [{ data: x0, size: 6 }, { data: x1, size: 5 }], n);
      const hidden = new Float64Array(n * 40);
      const got = applyMlp(mlp, [{ basis: basis(6), data: x0, hot }, { basis: basis(5), data: x1 }] as Rows[], n, hidden);
      expect(Array.from(got)).toEqual(Array.from(want.y));
      expect(Array.from(hidden)).toEqual(Array.from(want.hidden));
      expect(want.hidden.some((v) => v === 0)).toBe(true);
      // every input one-hot: repeated positions share an evaluation, with the same numbers
      const hot1 = Int32Array.from({ length: n }, (_, i) => i % 2);
      const x1hot = new Float64Array(n * 5);
      hot1.forEach((h, i) => (x1hot[i * 5 + h] = 1));
      const wantHot = reference(mlp, [{ data: x0, size: 6 }, { data: x1hot, size: 5 }], n);
      const hiddenHot = new Float64Array(n * 40);
      const gotHot = applyMlp(mlp, [{ basis: basis(6), data: x0, hot }, { basis: basis(5), data: x1hot, hot: hot1 }] as Rows[], n, hiddenHot);
      expect(Array.from(gotHot)).toEqual(Array.from(wantHot.y));
      expect(Array.from(hiddenHot)).toEqual(Array.from(wantHot.hidden));
      // runOpaqueMlp on collected rows: the same kernel
      const run = runOpaqueMlp(mlp, [{ rows: n, cols: 6, data: x0 }, { rows: n, cols: 5, data: x1 }]);
      expect(Array.from(run.output.data)).toEqual(Array.from(want.y));
      expect(Array.from(run.hidden.data)).toEqual(Array.from(want.hidden));
    }
  });

  it('attributes neurons from a given run exactly as from the inputs, with the plain ablation sum', () => {
    const rnd = noise(9);
    const n = 27;
    const mlp = randomMlp(3, [5], 10, 30, false);
    const x: Float64Array = Float64Array.from({ length: n * 5 }, () => (rnd() > 0 ? rnd() : 0));
    const rows = [{ rows: n, cols: 5, data: x }];
    const run = runOpaqueMlp(mlp, rows);
    const fromRun = attributeNeurons(mlp, run, { coverage: 0.8, maxNeurons: 6 });
    expect(attributeNeurons(mlp, rows, { coverage: 0.8, maxNeurons: 6 })).toEqual(fromRun);
    // the ablation (kept units vary, the others at their mean), one row and one unit at a time
    const H = 30;
    const d = 10;
    const mean = new Float64Array(H);
    for (let r = 0; r < n; r++) for (let j = 0; j < H; j++) mean[j] += run.hidden.data[r * H + j];
    for (let j = 0; j < H; j++) mean[j] /= n;
    const kept = new Set(fromRun.neurons.map((u) => u.index));
    const approx = new Float64Array(n * d);
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < d; c++) approx[r * d + c] = mlp.projB[c];
      for (let j = 0; j < H; j++) {
        const a = kept.has(j) ? run.hidden.data[r * H + j] : mean[j];
        if (a === 0) continue;
        for (let c = 0; c < d; c++) approx[r * d + c] += a * mlp.projW.data[j * d + c];
      }
    }
    expect(fromRun.neurons.length).toBeGreaterThan(0);
    expect(fromRun.keptFvu).toBe(fvu({ rows: n, cols: d, data: approx }, run.output));
  });

  it('multiplies matrices four rows at a time with the sums of row by row (zeros of the left factor skipped)', () => {
    const rnd = noise(21);
    for (const [r, k, c] of [[1, 3, 2], [4, 5, 7], [9, 6, 3], [13, 8, 5]]) {
      const a = { rows: r, cols: k, data: Float64Array.from({ length: r * k }, () => (rnd() > -0.4 ? rnd() : 0)) };
      const b = { rows: k, cols: c, data: Float64Array.from({ length: k * c }, () => rnd()) };
      const want = new Float64Array(r * c);
      for (let i = 0; i < r; i++) {
        for (let t = 0; t < k; t++) {
          const v = a.data[i * k + t];
          if (v === 0) continue;
          for (let j = 0; j < c; j++) want[i * c + j] += v * b.data[t * c + j];
        }
      }
      expect(Array.from(matmul(a, b).data)).toEqual(Array.from(want));
    }
  });
});
