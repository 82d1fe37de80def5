// The screening runs' opaque MLP kernel on the tensor backend: the interpreter's numbers to float32 precision, for
// any number of MLPs (weights kept on the backend for a few at a time), threaded through Execution, the
// incremental runs and the judge's screening (never its confirmation, which stays exact).
import { beforeAll, describe, expect, it } from 'vitest';
import { modelJudge } from '../../server/src/decompile/primitives/index';
import { IncrementalRuns } from '../../server/src/decompile/primitives/incremental';
import { tensorMlpKernel } from '../../server/src/decompile/primitives/tensorMlp';
import { applyMlp, type MlpKernel, type Rows } from '../../server/src/interpreter/elementwise';
import { Execution, runBatch } from '../../server/src/interpreter/index';
import { initBackend } from '../../server/src/model/backend';
import type { Basis, OpaqueMlp, Program } from '../../server/src/program/types';
import { matrix, noise, program, randomMlp, tinyBinMajorityModel, VOCAB } from './helpers';

const basis = (size: number): Basis => ({ kind: 'feature', size, labels: [] });

function inputs(seed: number, n: number): Rows[] {
  const rnd = noise(seed);
  const hot = Int32Array.from({ length: n }, () => Math.floor(((rnd() + 1) / 2) * 6));
  const x0 = new Float64Array(n * 6);
  hot.forEach((h, i) => (x0[i * 6 + h] = 1));
  const x1 = Float64Array.from({ length: n * 5 }, () => (rnd() > 0.3 ? rnd() : 0));
  return [
    { basis: basis(6), data: x0, hot },
    { basis: basis(5), data: x1 },
  ];
}

/** Largest |a - b| over the largest |b|: float32 against float64. */
function relativeError(a: Float64Array, b: Float64Array): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return err / scale;
}

/** A program over the helpers' vocabulary whose prediction reads an opaque MLP of the token and a uniform average. */
function mlpProgram(mlp: OpaqueMlp, d: number): Program {
  const V = VOCAB.length;
  return program(
    [
      { kind: 'aggregate', name: 'a1', line: 0, selectors: [], v: 'token' },
      { kind: 'elementwise', name: 'm1', line: 0, fn: { name: 'mlp', ref: 'mlp0' }, inputs: ['token', 'a1'] },
      { kind: 'project', name: 'logits1', line: 0, inp: 'm1', op: { kind: 'matrix', ref: 'OUT' } },
      { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['logits1'] },
    ],
    { OUT: matrix(d, V, (r, c) => ((r * 7 + c * 3) % 5) - 2) },
    { mlp0: mlp },
  );
}

function counting(kernel: MlpKernel): { kernel: MlpKernel; calls: () => number } {
  let calls = 0;
  return {
    kernel: (mlp, xs, n) => {
      calls++;
      return kernel(mlp, xs, n);
    },
    calls: () => calls,
  };
}

beforeAll(async () => {
  await initBackend();
});

describe('tensor MLP kernel', () => {
  it('computes the opaque MLP to float32 precision, with and without a constant, for more MLPs than it keeps', () => {
    const kernel = tensorMlpKernel();
    const mlps = Array.from({ length: 11 }, (_, k) => randomMlp(100 + k, [6, 5], 12, 40, k % 2 === 0));
    // a weight matrix given in float64 (as programs built in memory carry them)
    mlps[3] = { ...mlps[3], fcW: { ...mlps[3].fcW, data: Float64Array.from(mlps[3].fcW.data) } };
    // every MLP twice, the first ones again after the others pushed them out
    for (const round of [0, 1]) {
      mlps.forEach((mlp, k) => {
        const n = 1 + ((k * 5 + round) % 23);
        const xs = inputs(k + round, n);
        const want = applyMlp(mlp, xs, n);
        const got = kernel(mlp, xs, n);
        expect(got).toHaveLength(want.length);
        expect(relativeError(got, want)).toBeLessThan(1e-5);
      });
    }
    expect(kernel(mlps[0], inputs(1, 0), 0)).toHaveLength(0);
  });

  it('runs the MLP lines of Execution and of the incremental runs when given, with the exact predictions', () => {
    const d = 12;
    const p = mlpProgram(randomMlp(7, [VOCAB.length, VOCAB.length], d, 40, true), d);
    const seqs = [
      [2, 0, 1, 1],
      [2, 1, 0, 0, 0, 1],
      [2, 0],
    ];
    const exact = runBatch(p, seqs);
    const spy = counting(tensorMlpKernel());
    seqs.forEach((seq, i) => {
      const got = new Execution(p, seq, { mlpKernel: spy.kernel }).runToEnd();
      expect(relativeError(Float64Array.from(got.logits), Float64Array.from(exact[i].logits))).toBeLessThan(1e-5);
    });
    expect(spy.calls()).toBe(seqs.length);
    const runs = new IncrementalRuns(seqs, undefined, 3, undefined, spy.kernel);
    const ev = runs.begin(p);
    seqs.forEach((_, i) => runs.run(ev, i));
    expect(spy.calls()).toBe(2 * seqs.length);
  });

  it('serves the judge screening runs only: confirmation stays exact', async () => {
    const { model, task } = await tinyBinMajorityModel(4);
    const spy = counting(tensorMlpKernel());
    const bins: [number, number][] = [[1, 12]];
    const judge = await modelJudge(model, task, { bins, screenPerBin: 10, checkPerBin: 8, seed: 3, screenMlpKernel: spy.kernel });
    const exactJudge = await modelJudge(model, task, { bins, screenPerBin: 10, checkPerBin: 8, seed: 3 });
    const V = task.vocab.length;
    const d = 8;
    const p: Program = {
      header: { vocab: [...task.vocab], special: task.special, positions: task.nPositions, output: 'softmax', dHead: 8 },
      statements: [
        { kind: 'aggregate', name: 'a1', line: 0, selectors: [], v: 'token' },
        { kind: 'elementwise', name: 'm1', line: 0, fn: { name: 'mlp', ref: 'mlp0' }, inputs: ['a1'] },
        { kind: 'project', name: 'logits1', line: 0, inp: 'm1', op: { kind: 'matrix', ref: 'OUT' } },
        { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['logits1'] },
      ],
      matrices: new Map([['OUT', matrix(d, V, (r, c) => ((r + 2 * c) % 3) - 1)]]),
      mlps: new Map([['mlp0', randomMlp(9, [V], d, 32, false)]]),
    };
    expect(await judge.evaluate(p)).toBe(await exactJudge.evaluate(p));
    const screened = spy.calls();
    expect(screened).toBe(10);
    expect(await judge.confirm(p)).toBe(await exactJudge.confirm(p));
    expect(spy.calls()).toBe(screened);
  });
});
