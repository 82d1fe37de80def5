// Incremental evaluation (primitives/incremental.ts): every program a real search judges gets, per sequence,
// bit-for-bit the logits of a fresh interpreter run, while most statement runs are taken from earlier runs; the
// judge built on it gives the same matches and early-stop bounds as fresh runs.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IncrementalRuns, SignatureTable } from '../../server/src/decompile/primitives/incremental';
import { modelJudge, simplifyProgram } from '../../server/src/decompile/primitives/index';
import { INP_IS_OUT } from '../../server/src/decompile/primitives/library';
import { Execution, runBatch } from '../../server/src/interpreter/index';
import { initBackend } from '../../server/src/model/backend';
import { modelLogits } from '../../server/src/model/forward';
import { loadModel, saveModel } from '../../server/src/model/load';
import type { Gpt2Config } from '../../server/src/model/types';
import { randomWeights } from '../../server/src/model/weights';
import type { Program } from '../../server/src/program/types';
import { getTask, sequenceMatches } from '../../server/src/tasks/index';
import { Rng } from '../../server/src/util/rng';
import { matrix, noise, program, stepMlp } from './helpers';

function sequences(count: number, seed: number): number[][] {
  const rnd = noise(seed);
  return Array.from({ length: count }, () => {
    const n = 3 + Math.floor(((rnd() + 1) / 2) * 13);
    return [2, ...Array.from({ length: n - 1 }, () => (rnd() > 0.1 ? 0 : 1))];
  });
}

function argmaxes(logits: Float64Array, V: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < logits.length / V; i++) {
    let best = 0;
    for (let j = 1; j < V; j++) if (logits[i * V + j] > logits[i * V + best]) best = j;
    out.push(best);
  }
  return out;
}

/** A noisy two-head program with an opaque MLP between an aggregate and the logits. */
function noisyModel(): Program {
  const rnd = noise(11);
  const V = 6;
  return program(
    [
      { kind: 'select', name: 's1', line: 0, q: 'pos', k: 'pos', op: { kind: 'matrix', ref: 'PREV' } },
      { kind: 'aggregate', name: 'a1', line: 0, selectors: ['s1'], v: 'token' },
      { kind: 'select', name: 's2', line: 0, k: 'token', op: { kind: 'matrix', ref: 'NOBOS' } },
      { kind: 'aggregate', name: 'a2', line: 0, selectors: ['s2'], v: 'token' },
      { kind: 'elementwise', name: 'm1', line: 0, fn: { name: 'mlp', ref: 'mlp0' }, inputs: ['a2'], provenance: { layer: 0, head: null, mlp: true, paths: {} } },
      { kind: 'project', name: 'logits1', line: 0, inp: 'm1', op: { kind: 'matrix', ref: 'OUT' } },
      { kind: 'project', name: 'logits2', line: 0, inp: 'a1', op: { kind: 'matrix', ref: 'COPY' } },
      { kind: 'project', name: 'logits3', line: 0, inp: 'token', op: { kind: 'matrix', ref: 'TOK' } },
      { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['logits1', 'logits2', 'logits3'] },
    ],
    {
      PREV: matrix(16, 16, (q, k) => (k === q - 1 ? 6 : 0) + 0.3 * rnd()),
      NOBOS: matrix(1, V, (_, k) => (k === 2 ? -20 : 0.2 * rnd())),
      OUT: matrix(12, V, (r, c) => (r === 2 * c ? 3 : 0) + 0.2 * rnd()),
      COPY: matrix(V, V, (r, c) => (r === c ? 2 : 0) + 0.2 * rnd()),
      TOK: matrix(V, V, () => 0.3 * rnd()),
    },
    { mlp0: stepMlp(V, [0, 1], 0.6) },
  );
}

describe('incremental evaluation', () => {
  it('gives every program of a real search the logits of a fresh run, reusing most statement runs', async () => {
    const model = noisyModel();
    const seqs = sequences(40, 3);
    const V = model.header.vocab.length;
    const want = runBatch(model, seqs).map((r) => argmaxes(r.logits, V));
    const runs = new IncrementalRuns(seqs, new SignatureTable(), 3);
    let programs = 0;
    let compared = 0;
    const evaluate = (p: Program): number => {
      programs++;
      const fresh = runBatch(p, seqs);
      const ev = runs.begin(p);
      let ok = 0;
      seqs.forEach((_, i) => {
        const r = runs.run(ev, i);
        const got = argmaxes(fresh[i].logits, V);
        const matched = got.every((v, j) => v === want[i][j]);
        if (r.ex) {
          // bit for bit: the very numbers a fresh run computes
          expect(Array.from(r.ex.result().logits)).toEqual(Array.from(fresh[i].logits));
          runs.remember(ev, i, matched);
          compared++;
        } else {
          expect(r.matched).toBe(matched);
        }
        if (matched) ok++;
      });
      return ok / seqs.length;
    };
    const result = await simplifyProgram(model, evaluate, { inputs: seqs });
    expect(programs).toBeGreaterThan(10);
    expect(compared).toBeGreaterThan(0);
    expect(result.steps.length).toBeGreaterThan(0);
    // most statements of a candidate are the accepted program's: taken, not recomputed
    expect(runs.stats.reused).toBeGreaterThan(runs.stats.computed);
    // the final screening run repeats the last accepted program: its predictions are known
    expect(runs.stats.known).toBeGreaterThanOrEqual(seqs.length);
  });

  it('adopts values by signature: an edit re-runs only the edited statement and what reads it', () => {
    const model = noisyModel();
    const seqs = sequences(5, 8);
    const runs = new IncrementalRuns(seqs, new SignatureTable(), 3);
    const first = runs.begin(model);
    seqs.forEach((_, i) => runs.run(first, i));
    expect(runs.stats).toMatchObject({ reused: 0, computed: 5 * model.statements.length });
    // swap the token projection's matrix: only logits3 and the prediction change
    const edited: Program = { ...model, matrices: new Map(model.matrices), statements: model.statements.map((s) => (s.name === 'logits3' ? { ...s, op: { kind: 'matrix', ref: 'TOK2' } } : s)) };
    edited.matrices.set('TOK2', matrix(6, 6, (r, c) => (r === c ? 1 : 0)));
    const ev = runs.begin(edited);
    seqs.forEach((seq, i) => {
      const ex = runs.run(ev, i).ex as Execution;
      const fresh = new Execution(edited, seq).runToEnd();
      expect(Array.from(ex.result().logits)).toEqual(Array.from(fresh.logits));
      // a statement's value is shared with the run that computed it, not copied
      expect(ex.value('m1')?.data).toBeDefined();
    });
    expect(runs.stats.computed).toBe(5 * model.statements.length + 5 * 2);
    expect(runs.stats.reused).toBe(5 * (model.statements.length - 2));
    // renaming a statement keeps its signature (reused under the new name)
    const renamed: Program = {
      ...edited,
      statements: edited.statements.map((s) =>
        s.name === 'a1' ? { ...s, name: 'avg' } : s.kind === 'project' && s.inp === 'a1' ? { ...s, inp: 'avg' } : s,
      ),
    };
    const before = runs.stats.computed;
    const ev2 = runs.begin(renamed);
    seqs.forEach((_, i) => runs.run(ev2, i));
    expect(runs.stats.computed).toBe(before);
  });
});

describe('modelJudge with incremental runs', () => {
  it('gives fresh-run matches and the same early-stop bounds, and feeds the MLP fits from its cache', async () => {
    await initBackend();
    const task = getTask('bin_majority');
    const config: Gpt2Config = { architecture: 'GPT2LMHeadModel', nLayer: 1, nHead: 1, nEmbd: 8, nPositions: task.nPositions, vocabSize: task.vocab.length, activation: 'gelu_new', lnEps: 1e-5 };
    const rng = new Rng(4);
    const dir = join(mkdtempSync(join(tmpdir(), 'rasp-prim-')), 'bin_majority-tiny');
    await saveModel(dir, config, randomWeights(config, () => rng.next(), 0.5), { task: task.name, objective: 'ce', vocab: [...task.vocab], source: 'card' });
    const model = await loadModel(dir);
    const judge = await modelJudge(model, task, { bins: [[1, 10], [11, 30]], screenPerBin: 40, checkPerBin: 10, seed: 2 });
    const logits = await modelLogits(model, judge.inputs);
    const base: Program = {
      header: { vocab: [...task.vocab], special: task.special, positions: task.nPositions, output: 'softmax', dHead: 8 },
      statements: [
        { kind: 'aggregate', name: 'a1', line: 0, selectors: [], v: 'token' },
        { kind: 'project', name: 'logits1', line: 0, inp: 'a1', op: INP_IS_OUT },
        { kind: 'project', name: 'logits2', line: 0, inp: 'token', op: { kind: 'matrix', ref: 'T' } },
        { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['logits1', 'logits2'] },
      ],
      matrices: new Map([['T', matrix(task.vocab.length, task.vocab.length, (r, c) => (r === c ? 0.3 : 0))]]),
      mlps: new Map(),
    };
    const variants = [0.3, 2, 0.3, 5, 0.05].map((w): Program => ({
      ...base,
      matrices: new Map([['T', matrix(task.vocab.length, task.vocab.length, (r, c) => (r === c ? w : 0))]]),
    }));
    const n = judge.inputs.length;
    for (const p of [base, ...variants, base]) {
      const ok = runBatch(p, judge.inputs).map((r, i) => sequenceMatches(task, judge.inputs[i], r.logits, logits[i]));
      const expected = ok.filter(Boolean).length / n;
      expect(await judge.evaluate(p)).toBe(expected);
      // below atLeast it stops at the first miss too many (checked every `checkEvery` sequences) and returns the
      // upper bound (n - misses) / n; at or above, the exact match
      for (const atLeast of [expected + 1e-6, expected, 0.5, 0.99]) {
        for (const checkEvery of [1, 16]) {
          const maxMiss = Math.floor((1 - atLeast) * n + 1e-9);
          let miss = 0;
          for (let k = 0; k < n; k++) {
            if (!ok[k]) miss++;
            if (miss > maxMiss && ((k + 1) % checkEvery === 0 || k === n - 1)) break;
          }
          const got = await judge.evaluate(p, { atLeast, checkEvery });
          expect(got).toBe((n - miss) / n);
          expect(got >= atLeast).toBe(expected >= atLeast);
        }
      }
    }
    const stats = judge.stats().screen;
    expect(stats.known).toBeGreaterThan(0);
    expect(stats.reused).toBeGreaterThan(0);
    // the runner serves the screening sequences from the cache, with the values of a fresh run
    const fits = judge.inputs.slice(0, 10);
    const values = judge.runner.values(base, fits, ['a1']).get('a1') ?? [];
    fits.forEach((seq, i) => {
      const fresh = new Execution(base, [...seq]);
      fresh.step();
      expect(Array.from(values[i].data)).toEqual(Array.from(fresh.value('a1')?.data ?? []));
    });
  });
});
