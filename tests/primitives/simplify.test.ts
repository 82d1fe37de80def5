// simplifyProgram end to end through the real interpreter: the "model" is a noisy program (op matrices that are a
// primitive times a moderate scale plus noise, or an opaque MLP), judged by argmax agreement at every position.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { loadProgramFile } from '../../server/src/language/load';
import { writeProgramFiles } from '../../server/src/program/print';
import { opMatrix, runBatch } from '../../server/src/interpreter/index';
import { posBasis, tokenBasis } from '../../server/src/program/bases';
import type { Matrix, OpaqueMlp, Program, Statement } from '../../server/src/program/types';
import { simplifyProgram } from '../../server/src/decompile/primitives/index';
import { FIRST, LAST, everyNth, kIsQMinus } from '../../server/src/decompile/primitives/library';
import { matrix, noise, program, VOCAB } from './helpers';

function argmaxes(p: Program, seqs: number[][]): Int32Array[] {
  const V = p.header.vocab.length;
  return runBatch(p, seqs).map((r) => {
    const n = r.logits.length / V;
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let j = 1; j < V; j++) if (r.logits[i * V + j] > r.logits[i * V + best]) best = j;
      out[i] = best;
    }
    return out;
  });
}

function judge(reference: Program, seqs: number[][]): (p: Program) => number {
  const want = argmaxes(reference, seqs);
  return (p) => {
    const got = argmaxes(p, seqs);
    let ok = 0;
    got.forEach((g, s) => {
      if (g.every((v, i) => v === want[s][i])) ok++;
    });
    return ok / seqs.length;
  };
}

function sequences(count: number, minLen: number, maxLen: number, normal: number, seed: number, bos = 2): number[][] {
  const rnd = noise(seed);
  const out: number[][] = [];
  for (let s = 0; s < count; s++) {
    const n = minLen + Math.floor(((rnd() + 1) / 2) * (maxLen - minLen + 1));
    const seq = [bos];
    for (let i = 1; i < n; i++) seq.push(Math.floor(((rnd() + 1) / 2) * normal));
    out.push(seq);
  }
  return out;
}

describe('primitive labels are true to the interpreter matrices', () => {
  it('k==q-2 is the second diagonal, every-second counts back from the query, first/last favour what they say', () => {
    const p = program([{ kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: [] } as Statement]);
    const P = posBasis(p);
    const m2 = opMatrix(p, kIsQMinus(2), P, P);
    for (let q = 0; q < 16; q++) for (let k = 0; k < 16; k++) expect(m2.data[q * 16 + k] > 0).toBe(k === q - 2);
    const e2 = opMatrix(p, everyNth(2), P, P);
    for (let q = 0; q < 16; q++) for (let k = 0; k <= q; k++) expect(e2.data[q * 16 + k] > 0).toBe((q - k) % 2 === 0);
    const first = opMatrix(p, FIRST, P, P);
    const last = opMatrix(p, LAST, P, P);
    expect(first.data[0]).toBeGreaterThan(first.data[5]);
    expect(last.data[5]).toBeGreaterThan(last.data[0]);
  });
});

describe('attention and logit primitives', () => {
  it('replaces noisy previous-token and identity matrices by k==q-1 and inp==out, and deletes a flat select and bias', async () => {
    const rnd = noise(5);
    const P = 16;
    const V = 6;
    const prev = matrix(P, P, (q, k) => (k === q - 1 ? 9 : 0) + 0.8 * rnd());
    const bosKey = matrix(1, V, () => 0.1 * rnd());
    const flat = matrix(P, P, () => 0.05 * rnd());
    const ident = matrix(V, V, (r, c) => (r === c ? 4 : 0) + 0.5 * rnd());
    const bias = matrix(1, V, () => 0.01 * rnd());
    const stmts: Statement[] = [
      { kind: 'select', name: 's1', line: 0, q: 'pos', k: 'pos', op: { kind: 'matrix', ref: 'PREV' }, provenance: { layer: 0, head: 0, mlp: false, paths: { q: 'wpe', k: 'wpe' } } },
      { kind: 'select', name: 's2', line: 0, k: 'token', op: { kind: 'matrix', ref: 'BOSK' } },
      { kind: 'select', name: 's3', line: 0, q: 'pos', k: 'pos', op: { kind: 'matrix', ref: 'FLAT' } },
      { kind: 'aggregate', name: 'a1', line: 0, selectors: ['s1', 's2', 's3'], v: 'token' },
      { kind: 'project', name: 'logits1', line: 0, inp: 'a1', op: { kind: 'matrix', ref: 'ID' } },
      { kind: 'project', name: 'logits2', line: 0, op: { kind: 'matrix', ref: 'BIAS' } },
      { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['logits1', 'logits2'] },
    ];
    const model = program(stmts, { PREV: prev, BOSK: bosKey, FLAT: flat, ID: ident, BIAS: bias });
    const seqs = sequences(60, 2, 16, 2, 9);
    const evaluate = judge(model, seqs);
    const result = await simplifyProgram(model, evaluate, { inputs: seqs, stages: { round: false } });
    const out = result.program;
    const byName = new Map(out.statements.map((s) => [s.name, s]));
    expect(byName.get('s1')).toMatchObject({ op: { kind: 'predicate', label: 'k==q-1' } });
    expect(byName.has('s2')).toBe(false);
    expect(byName.has('s3')).toBe(false);
    expect(byName.get('a1')).toMatchObject({ selectors: ['s1'] });
    expect(byName.get('logits1')).toMatchObject({ op: { kind: 'predicate', label: 'inp==out' } });
    expect(byName.has('logits2')).toBe(false);
    expect(out.matrices.size).toBe(0);
    expect(result.stats).toMatchObject({ primitives: 2, rounded: 0, opaque: 0, lines: 4, linesBefore: 7, match: 1, baseline: 1 });
    expect(evaluate(out)).toBe(1);
    expect(byName.get('s1')?.provenance).toEqual(stmts[0].provenance);
  });

  it('replaces a key-only select favouring BOS by k==BOS (uniform would change the predictions)', async () => {
    const rnd = noise(8);
    const V = 6;
    const model = program(
      [
        { kind: 'select', name: 's1', line: 0, k: 'token', op: { kind: 'matrix', ref: 'BOSK' } },
        { kind: 'aggregate', name: 'a1', line: 0, selectors: ['s1'], v: 'token' },
        { kind: 'project', name: 'logits1', line: 0, inp: 'a1', op: { kind: 'matrix', ref: 'ID' } },
        { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['logits1'] },
      ],
      { BOSK: matrix(1, V, (_, k) => (k === 2 ? 10 : 0) + 0.3 * rnd()), ID: matrix(V, V, (r, c) => (r === c ? 4 : 0) + 0.3 * rnd()) },
    );
    const seqs = sequences(50, 2, 16, 2, 12);
    const evaluate = judge(model, seqs);
    const result = await simplifyProgram(model, evaluate, { inputs: seqs });
    expect(result.program.statements[0]).toMatchObject({ kind: 'select', k: 'token', op: { kind: 'predicate', label: 'k==BOS' } });
    expect(result.steps.find((s) => s.line === 's1')).toMatchObject({ stage: 'attention', choice: 'k==BOS' });
    // a1 is <bos> everywhere now, so only the special (BOS) input row of the readout matters: the paper's order
    // (primitive x special) finds `uniform` with special rows `inp==out` before plain `inp==out`
    expect(result.program.statements[2]).toMatchObject({ op: { kind: 'primitive', name: 'uniform' }, specialOp: { label: 'inp==out' } });
    expect(evaluate(result.program)).toBe(1);
  });

  it('stops trying candidates at the deadline, keeps what it accepted and says where it stopped', async () => {
    const rnd = noise(5);
    const P = 16;
    const V = 6;
    const stmts: Statement[] = [
      { kind: 'select', name: 's1', line: 0, q: 'pos', k: 'pos', op: { kind: 'matrix', ref: 'PREV' } },
      { kind: 'aggregate', name: 'a1', line: 0, selectors: ['s1'], v: 'token' },
      { kind: 'project', name: 'logits1', line: 0, inp: 'a1', op: { kind: 'matrix', ref: 'ID' } },
      { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['logits1'] },
    ];
    const model = program(stmts, {
      PREV: matrix(P, P, (q, k) => (k === q - 1 ? 9 : 0) + 0.8 * rnd()),
      ID: matrix(V, V, (r, c) => (r === c ? 4 : 0) + 0.5 * rnd()),
    });
    const seqs = sequences(60, 2, 16, 2, 9);
    const strict = judge(model, seqs);
    // the clock jumps past the deadline once s1 has become k==q-1 (the first acceptance)
    let late = 0;
    const now = Date.now;
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => now() + late);
    try {
      const evaluate = (p: Program): number => {
        const s1 = p.statements.find((s) => s.name === 's1');
        if (s1?.kind === 'select' && s1.op.kind === 'predicate') late = 3_600_000;
        return strict(p);
      };
      const result = await simplifyProgram(model, evaluate, { inputs: seqs, deadline: now() + 60_000 });
      const byName = new Map(result.program.statements.map((s) => [s.name, s]));
      expect(byName.get('s1')).toMatchObject({ op: { kind: 'predicate', label: 'k==q-1' } });
      // logits1 was never tried: still its matrix, neither a primitive nor rounded
      expect(byName.get('logits1')).toMatchObject({ op: { kind: 'matrix', ref: 'ID' } });
      expect(result.stats.truncated).toBe('time budget reached: no candidates tried from attention and logits, logits1 on');
      expect(result.steps.map((x) => x.line)).toEqual(['s1']);
      expect(result.stats.match).toBe(1);
    } finally {
      clock.mockRestore();
    }
  });

  it('rounds a matrix no primitive explains into a sparse grid that keeps the predictions', async () => {
    const rnd = noise(21);
    const V = 6;
    // a token permutation readout (a->b, b->a) is no primitive
    const perm = matrix(V, V, (r, c) => ((r === 0 && c === 1) || (r === 1 && c === 0) ? 7.3 : r === c && r > 1 ? 3.1 : 0) + 0.2 * rnd());
    const model = program(
      [
        { kind: 'project', name: 'logits1', line: 0, inp: 'token', op: { kind: 'matrix', ref: 'PERM' } },
        { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['logits1'] },
      ],
      { PERM: perm },
    );
    const seqs = sequences(40, 2, 12, 2, 4);
    const evaluate = judge(model, seqs);
    const result = await simplifyProgram(model, evaluate, { inputs: seqs });
    expect(result.stats).toMatchObject({ primitives: 0, rounded: 1, opaque: 0, match: 1 });
    const proj = result.program.statements[0];
    if (proj.kind !== 'project' || proj.op.kind !== 'matrix') throw new Error('expected a matrix projection');
    const m = result.program.matrices.get(proj.op.ref) as Matrix;
    const nonZero = Array.from(m.data).filter((v) => v !== 0);
    expect(nonZero.length).toBeLessThanOrEqual(6);
    expect(new Set(nonZero).size).toBeLessThanOrEqual(3);
    expect(evaluate(result.program)).toBe(1);
  });
});

const VOCAB3 = ['a', 'b', 'c', '<bos>', '<sep>', '<eos>', '<pad>'];

/**
 * An MLP over a 3-token mixture writing step(x_i - 0.5) to residual coordinate i (steep gelu pairs: hidden units
 * 2i, 2i+1), which is harden on inputs whose top entry exceeds one half; `extraNeurons` more units have constant
 * activations (a bias, no information) and large output weights.
 */
function majorityMlp(extraNeurons: number): OpaqueMlp {
  const V = VOCAB3.length;
  const d = 4;
  const hidden = 6 + extraNeurons;
  const K = 400;
  // residual coordinates 0..2 = x_a, x_b, x_c, coordinate 3 = -(x_a + x_b + x_c) keeps the mean at 0 (specials map to 0)
  const emb = matrix(V, d, (r, c) => (r < 3 ? (c === r ? 1 : c === 3 ? -1 : 0) : 0));
  const fcW = new Float32Array(d * hidden);
  const fcB = new Float32Array(hidden);
  const projW = new Float32Array(hidden * d);
  for (let i = 0; i < 3; i++) {
    const u = 2 * i;
    fcW[i * hidden + u] = K;
    fcW[i * hidden + u + 1] = K;
    fcB[u] = -K / 2;
    fcB[u + 1] = -K / 2 - 1;
    projW[u * d + i] = 1;
    projW[(u + 1) * d + i] = -1;
  }
  for (let u = 6; u < hidden; u++) {
    fcB[u] = 1 + (u % 4);
    projW[u * d + (u % 3)] = 2;
  }
  return {
    inputEmbeddings: [{ rows: V, cols: d, data: Float32Array.from(emb.data) }],
    lnGamma: new Float32Array(d).fill(1),
    lnVariance: 1 - 1e-5,
    lnEps: 1e-5,
    fcW: { rows: d, cols: hidden, data: fcW },
    fcB,
    projW: { rows: hidden, cols: d, data: projW },
    projB: new Float32Array(d),
  };
}

/** Sequences over a,b,c where one token always holds more than half of the prefix (after <bos>). */
function dominated(count: number, seed: number): number[][] {
  const rnd = noise(seed);
  const out: number[][] = [];
  for (let s = 0; s < count; s++) {
    const n = 4 + Math.floor(((rnd() + 1) / 2) * 20);
    const t = Math.floor(((rnd() + 1) / 2) * 3);
    const seq = [3, t];
    let own = 1;
    for (let i = 2; i < n; i++) {
      const other = (t + 1 + Math.floor(((rnd() + 1) / 2) * 2)) % 3;
      if (rnd() > -0.6 && (own - 1) / i >= 0.52) seq.push(other);
      else {
        seq.push(t);
        own++;
      }
    }
    out.push(seq);
  }
  return out;
}

describe('MLP matching', () => {
  it('matches an opaque majority MLP to harden, rewrites the projection through C and keeps every prediction', async () => {
    const V = VOCAB3.length;
    const noBos = matrix(1, V, (_, k) => (k === 3 ? -30 : 0));
    const readout = matrix(4, V, (r, c) => (r === c && r < 3 ? 5 : 0));
    const model: Program = {
      header: { vocab: VOCAB3, special: { bos: 3, sep: 4, eos: 5, pad: 6 }, positions: 24, output: 'softmax', dHead: 4 },
      statements: [
        { kind: 'select', name: 's1', line: 0, k: 'token', op: { kind: 'matrix', ref: 'NOBOS' } },
        { kind: 'aggregate', name: 'a1', line: 0, selectors: ['s1'], v: 'token' },
        { kind: 'elementwise', name: 'm1', line: 0, fn: { name: 'mlp', ref: 'mlp0' }, inputs: ['a1'], provenance: { layer: 0, head: null, mlp: true, paths: { input: 'attn_output-0-0-wte' } } },
        { kind: 'project', name: 'logits1', line: 0, inp: 'm1', op: { kind: 'matrix', ref: 'OUT' } },
        // the current token competes with the MLP's vote: only a step (not a linear read of a1) keeps the decisions
        { kind: 'project', name: 'logits2', line: 0, inp: 'token', op: { kind: 'matrix', ref: 'CUR' } },
        { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['logits1', 'logits2'] },
      ],
      matrices: new Map([
        ['NOBOS', noBos],
        ['OUT', readout],
        ['CUR', matrix(V, V, (r, c) => (r === c ? 4.5 : 0))],
      ]),
      mlps: new Map([['mlp0', majorityMlp(20)]]),
    };
    const seqs = dominated(80, 17);
    const evaluate = judge(model, seqs);
    expect(tokenBasis(model).size).toBe(7);
    const result = await simplifyProgram(model, evaluate, { inputs: seqs, stages: { attention: false, round: false } });
    const [expl] = result.mlpExplanations;
    expect(expl.primitive).toBe('harden');
    expect(expl.line).toBe('hardened_a1');
    const line = result.program.statements.find((s) => s.name === 'hardened_a1');
    expect(line).toMatchObject({ kind: 'elementwise', fn: { name: 'harden' }, inputs: ['a1'] });
    // provenance: the planted step neurons (0..5), none of the constant ones
    const neurons = line?.provenance?.neurons?.map((n) => n.index) ?? [];
    expect(neurons.length).toBeGreaterThan(0);
    expect(neurons.every((n) => n < 6)).toBe(true);
    expect(expl.neuronsFvu).toBeLessThan(0.05);
    // each step neuron is driven by its own token's share
    for (const n of expl.neuronDetails) expect(n.inputs[0].top[0]).toMatchObject({ label: VOCAB3[Math.floor(n.index / 2)] });
    const proj = result.program.statements.find((s) => s.name === 'logits1');
    expect(proj).toMatchObject({ inp: 'hardened_a1' });
    if (proj?.kind !== 'project' || proj.op.kind !== 'matrix') throw new Error('expected a matrix projection');
    expect(result.program.matrices.get(proj.op.ref)).toMatchObject({ rows: 7, cols: 7 });
    expect(result.program.mlps.size).toBe(0);
    expect(evaluate(result.program)).toBe(1);
    // harden fits (almost) exactly, a linear read of a1 does not
    expect(expl.candidates.find((c) => c.label === 'harden')?.fvu).toBeLessThan(1e-6);
    expect(expl.candidates.find((c) => c.label === 'no_op')?.fvu).toBeGreaterThan(0.05);
    expect(result.stats.opaque).toBe(3); // the three matrices that stay (attention and rounding were off)
    expect(result.stats.primitives).toBe(1);
  });

  it('splits an unsplit MLP into a primitive of one input plus linear projections of the others', async () => {
    const V = VOCAB3.length;
    const d = 6;
    const base = majorityMlp(0);
    const hidden = 7;
    const K = 400;
    // input 0 = token (coordinates 4,5: token a -> +1,-1), input 1 = a1 (coordinates 0..3 as in majorityMlp)
    const embTok = matrix(V, d, (r, c) => (r === 0 ? (c === 4 ? 1 : c === 5 ? -1 : 0) : 0));
    const embA1 = matrix(V, d, (r, c) => (r < 3 ? (c === r ? 1 : c === 3 ? -1 : 0) : 0));
    const fcW = new Float32Array(d * hidden);
    const fcB = new Float32Array(hidden);
    const projW = new Float32Array(hidden * d);
    for (let i = 0; i < 3; i++) {
      fcW[i * hidden + 2 * i] = K;
      fcW[i * hidden + 2 * i + 1] = K;
      fcB[2 * i] = -K / 2;
      fcB[2 * i + 1] = -K / 2 - 1;
      projW[2 * i * d + i] = 1;
      projW[(2 * i + 1) * d + i] = -1;
    }
    // a near-linear unit (gelu(10 + z) ~ 10 + z): "the current token is a" -> output coordinate 3
    fcW[4 * hidden + 6] = 1;
    fcB[6] = 10;
    projW[6 * d + 3] = 1;
    const mlp: OpaqueMlp = {
      ...base,
      inputEmbeddings: [f32(embTok), f32(embA1)],
      lnGamma: new Float32Array(d).fill(1),
      // coordinates have mean 0 by construction; fix the scale at 1
      lnVariance: 1 - 1e-5,
      fcW: { rows: d, cols: hidden, data: fcW },
      fcB,
      projW: { rows: hidden, cols: d, data: projW },
      // coordinate 3 = gelu(10 + z) - 10 ~ z: 1 when the current token is a, else 0
      projB: Float32Array.from([0, 0, 0, -10, 0, 0]),
    };
    const model: Program = {
      header: { vocab: VOCAB3, special: { bos: 3, sep: 4, eos: 5, pad: 6 }, positions: 24, output: 'softmax', dHead: 4 },
      statements: [
        { kind: 'select', name: 's1', line: 0, k: 'token', op: { kind: 'matrix', ref: 'NOBOS' } },
        { kind: 'aggregate', name: 'a1', line: 0, selectors: ['s1'], v: 'token' },
        { kind: 'elementwise', name: 'm1', line: 0, fn: { name: 'mlp', ref: 'mlp0' }, inputs: ['token', 'a1'], provenance: { layer: 0, head: null, mlp: true, paths: {} } },
        { kind: 'project', name: 'logits1', line: 0, inp: 'm1', op: { kind: 'matrix', ref: 'OUT' } },
        { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['logits1'] },
      ],
      matrices: new Map([
        ['NOBOS', matrix(1, V, (_, k) => (k === 3 ? -30 : 0))],
        // steps vote for their token (5); "the current token is a" votes for b (6): a linear term of token
        ['OUT', matrix(d, V, (r, c) => (r < 3 && r === c ? 5 : r === 3 && c === 1 ? 6 : 0))],
      ]),
      mlps: new Map([['mlp0', mlp]]),
    };
    const seqs = dominated(80, 29);
    const evaluate = judge(model, seqs);
    const result = await simplifyProgram(model, evaluate, { inputs: seqs, stages: { attention: false, round: false } });
    const [expl] = result.mlpExplanations;
    // the token term decides some positions: predictions are not all the dominant token
    const preds = runBatch(model, seqs).flatMap((r) => r.prediction);
    expect(preds.filter((t) => t === 'b').length).toBeGreaterThan(preds.filter((t) => t === 'a').length);
    expect(expl.primitive).toBe('harden of a1 + linear rest');
    const names = result.program.statements.map((s) => s.name);
    expect(names).toContain('hardened_a1');
    expect(result.program.statements.find((s) => s.kind === 'project' && s.inp === 'token')).toBeDefined();
    expect(result.program.statements.find((s) => s.kind === 'prediction')).toMatchObject({ terms: ['logits1', 'logits1_token'] });
    expect(evaluate(result.program)).toBe(1);
  });

  it('keeps an MLP opaque with an input->effect table when no primitive keeps the predictions', async () => {
    const V = VOCAB3.length;
    // out = step(x_a - 0.35): "a is at least 35%", which no primitive of the library states (exists uses 0.1)
    const d = 4;
    const hidden = 2;
    const mlp: OpaqueMlp = {
      inputEmbeddings: [{ rows: V, cols: d, data: Float32Array.from(matrix(V, d, (r, c) => (r < 3 ? (c === r ? 1 : c === 3 ? -1 : 0) : 0)).data) }],
      lnGamma: new Float32Array(d).fill(1),
      lnVariance: 1 - 1e-5,
      lnEps: 1e-5,
      fcW: { rows: d, cols: hidden, data: Float32Array.from([400, 400, 0, 0, 0, 0, 0, 0]) },
      fcB: Float32Array.from([-140, -141]),
      projW: { rows: hidden, cols: d, data: Float32Array.from([1, 0, 0, 0, -1, 0, 0, 0]) },
      projB: new Float32Array(d),
    };
    const model: Program = {
      header: { vocab: VOCAB3, special: { bos: 3, sep: 4, eos: 5, pad: 6 }, positions: 24, output: 'softmax', dHead: 4 },
      statements: [
        { kind: 'select', name: 's1', line: 0, k: 'token', op: { kind: 'matrix', ref: 'NOBOS' } },
        { kind: 'aggregate', name: 'a1', line: 0, selectors: ['s1'], v: 'token' },
        { kind: 'elementwise', name: 'm1', line: 0, fn: { name: 'mlp', ref: 'mlp0' }, inputs: ['a1'], provenance: { layer: 0, head: null, mlp: true, paths: {} } },
        { kind: 'project', name: 'logits1', line: 0, inp: 'm1', op: { kind: 'matrix', ref: 'OUT' } },
        { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['logits1'] },
      ],
      matrices: new Map([
        ['NOBOS', matrix(1, V, (_, k) => (k === 3 ? -30 : 0))],
        ['OUT', matrix(d, V, (r, c) => (r === 0 && c === 0 ? 6 : r === 0 && c === 1 ? -6 : 0))],
      ]),
      mlps: new Map([['mlp0', mlp]]),
    };
    const seqs = sequences(80, 2, 24, 3, 23, 3);
    const evaluate = judge(model, seqs);
    const result = await simplifyProgram(model, evaluate, { inputs: seqs, stages: { attention: false, round: false } });
    const [expl] = result.mlpExplanations;
    expect(expl.primitive).toBeUndefined();
    expect(expl.line).toBe('m1');
    expect(result.program.statements.find((s) => s.name === 'm1')?.provenance?.neurons?.map((n) => n.index).sort()).toEqual([0, 1]);
    const table = expl.table ?? [];
    expect(table.length).toBeGreaterThan(3);
    // the two ends of the table fall on the two sides of the MLP's threshold
    const aShare = (row: (typeof table)[number]): number => Number(row.input.find((e) => e.startsWith('a='))?.slice(2) ?? 0);
    expect(aShare(table[0]) > 0.35).not.toBe(aShare(table[table.length - 1]) > 0.35);
    expect(table[0].effects[0]).toMatchObject({ reader: 'logits1' });
    expect(evaluate(result.program)).toBe(1);
  });
});

/**
 * A Dyck depth MLP: on a prefix histogram (uniform select, BOS counted once) it writes step(depth >= 1) and
 * step(depth >= 2) as linear thresholds x_a - x_b > k x_bos (what a fixed-variance MLP can compute), steep enough
 * for lengths up to 120, where depth 1 is a share difference of < 0.01.
 */
function depthMlp(): OpaqueMlp {
  const V = VOCAB.length;
  const d = 4;
  const K = 5000;
  // residual [x_a - x_b, x_bos, -(x_a - x_b), -x_bos]: mean 0, so the layer norm's centring is the identity
  const emb = matrix(V, d, (r, c) => {
    const u = r === 0 ? 1 : r === 1 ? -1 : 0;
    const v = r === 2 ? 1 : 0;
    return [u, v, -u, -v][c];
  });
  const fcW = new Float32Array(d * 4);
  const fcB = new Float32Array(4);
  const projW = new Float32Array(4 * d);
  [0.5, 1.5].forEach((k, i) => {
    // units 2i, 2i+1: gelu(K z) - gelu(K z - 1) with z = u - k v: a step at depth k
    for (const u of [2 * i, 2 * i + 1]) {
      fcW[0 * 4 + u] = K;
      fcW[1 * 4 + u] = -K * k;
    }
    fcB[2 * i + 1] = -1;
    projW[2 * i * d + i] = 1;
    projW[(2 * i + 1) * d + i] = -1;
  });
  return {
    inputEmbeddings: [{ rows: V, cols: d, data: Float32Array.from(emb.data) }],
    lnGamma: new Float32Array(d).fill(1),
    lnVariance: 1 - 1e-5,
    lnEps: 1e-5,
    fcW: { rows: d, cols: 4, data: fcW },
    fcB,
    projW: { rows: 4, cols: d, data: projW },
    projB: new Float32Array(d),
  };
}

/** Bracket sequences (a opens, b closes) of depth 0-3 after <bos>, lengths minLen..maxLen. */
function brackets(count: number, minLen: number, maxLen: number, seed: number): number[][] {
  const rnd = noise(seed);
  const out: number[][] = [];
  for (let s = 0; s < count; s++) {
    const n = minLen + Math.floor(((rnd() + 1) / 2) * (maxLen - minLen + 1));
    const seq = [2];
    let depth = 0;
    for (let i = 1; i < n; i++) {
      const open = depth === 0 || (depth < 3 && rnd() > 0);
      seq.push(open ? 0 : 1);
      depth += open ? 1 : -1;
    }
    out.push(seq);
  }
  return out;
}

describe('count_diff (beyond the paper)', () => {
  it('names a Dyck depth MLP count_diff at long lengths, where the paper\'s diff bins cannot see the depth', async () => {
    const V = VOCAB.length;
    const model: Program = {
      ...program(
        [
          { kind: 'aggregate', name: 'a1', line: 0, selectors: [], v: 'token' },
          { kind: 'elementwise', name: 'm1', line: 0, fn: { name: 'mlp', ref: 'mlp0' }, inputs: ['a1'], provenance: { layer: 0, head: null, mlp: true, paths: {} } },
          { kind: 'project', name: 'logits1', line: 0, inp: 'm1', op: { kind: 'matrix', ref: 'OUT' } },
          { kind: 'project', name: 'logits2', line: 0, op: { kind: 'matrix', ref: 'BIAS' } },
          { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['logits1', 'logits2'] },
        ],
        {
          // depth 0 -> <eos>, depth 1 -> b, depth >= 2 -> a
          OUT: matrix(4, V, (r, c) => (r === 0 ? (c === 4 ? -5 : c === 1 ? 5 : 0) : r === 1 ? (c === 1 ? -5 : c === 0 ? 5 : 0) : 0)),
          BIAS: matrix(1, V, (_, c) => (c === 4 ? 2.5 : 0)),
        },
        { mlp0: depthMlp() },
        128,
      ),
    };
    const seqs = [...brackets(30, 2, 20, 41), ...brackets(50, 60, 120, 43)];
    const evaluate = judge(model, seqs);
    const result = await simplifyProgram(model, evaluate, { inputs: seqs, stages: { attention: false, round: false } });
    const [expl] = result.mlpExplanations;
    expect(expl.primitive).toMatch(/^count_diff 0 1 scale 1$/);
    // every reader is a projection: the fits are measured on the logits it moves
    expect(expl.fvuOn).toBe('readers');
    expect(expl.line).toBe('count_diff_ab_a1');
    expect(result.program.statements.find((s) => s.name === 'count_diff_ab_a1')).toMatchObject({ kind: 'elementwise', fn: { name: 'count_diff', i: 0, j: 1, by: 2, scale: 1 }, inputs: ['a1'] });
    expect(evaluate(result.program)).toBe(1);
    // one scale per pair stays in the explanation (the best fit); the paper's diff misses the long sequences
    expect(expl.candidates.filter((c) => c.label.startsWith('count_diff'))).toHaveLength(1);
    const diff = expl.candidates.find((c) => c.label === 'diff 0 1');
    expect(diff).toBeDefined();
    expect(diff!.match ?? 0).toBeLessThan(1);
  });
});

describe('safety nets', () => {
  const V = 6;
  const model = (): Program =>
    program(
      [
        { kind: 'select', name: 's1', line: 0, q: 'pos', k: 'pos', op: { kind: 'matrix', ref: 'PREV' } },
        { kind: 'aggregate', name: 'a1', line: 0, selectors: ['s1'], v: 'token' },
        { kind: 'project', name: 'logits1', line: 0, inp: 'a1', op: { kind: 'matrix', ref: 'ID' } },
        { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['logits1'] },
      ],
      { PREV: matrix(16, 16, (q, k) => (k === q - 1 ? 9 : 0)), ID: matrix(V, V, (r, c) => (r === c ? 4 : 0)) },
    );

  it('undoes accepted phases when the confirmation set disagrees with a lenient screening', async () => {
    const p = model();
    const seqs = sequences(40, 3, 16, 2, 31);
    const strict = judge(p, seqs);
    // screening that accepts anything: uniform everywhere, every term deleted
    const result = await simplifyProgram(p, () => 1, { inputs: seqs, confirm: strict });
    expect(result.steps.some((s) => s.stage === 'rollback')).toBe(true);
    expect(result.stats.confirmed).toBe(1);
    expect(result.program.statements.map((s) => s.name)).toEqual(['s1', 'a1', 'logits1', 'prediction']);
    expect(strict(result.program)).toBe(1);
  });

  it('keeps the sampling error above the target: a replacement within it of the floor is refused or undone', async () => {
    const p = model();
    const seqs = sequences(20, 3, 16, 2, 31);
    // the input program as given: s1 and logits1 still carry PREV and ID
    const isInput = (q: Program): boolean =>
      q.statements.length === 4 &&
      q.statements.some((s) => s.kind === 'select' && s.op.kind === 'matrix' && s.op.ref === 'PREV') &&
      q.statements.some((s) => s.kind === 'project' && s.op.kind === 'matrix' && s.op.ref === 'ID');
    const screening = (q: Program): number => (isInput(q) ? 0.95 : 0.92);
    // screening: 0.92 passes target + margin (0.91) but not 0.9 + 2 x sqrt(0.09 / 288) = 0.935
    const loose = await simplifyProgram(p, screening, { inputs: seqs });
    expect(isInput(loose.program)).toBe(false);
    const guarded = await simplifyProgram(p, screening, { inputs: seqs, screenSamples: 288 });
    expect(isInput(guarded.program)).toBe(true);
    expect(guarded.stats.evaluations).toBeGreaterThan(1);
    // ... but never more than the input program's own match: with 288 samples at 0.93 it still takes 0.93s
    const flat = await simplifyProgram(p, () => 0.93, { inputs: seqs, screenSamples: 288 });
    expect(isInput(flat.program)).toBe(false);
    // the check set: 0.92 clears the target but not 0.9 + 2 x sqrt(0.09 / 600) = 0.9245, so the phases are undone
    const confirm = (base: number) => (q: Program): number => (isInput(q) ? base : 0.92);
    const undone = await simplifyProgram(p, () => 1, { inputs: seqs, confirm: confirm(0.95), confirmSamples: 600 });
    expect(isInput(undone.program)).toBe(true);
    expect(undone.steps.some((st) => st.stage === 'rollback')).toBe(true);
    expect(isInput((await simplifyProgram(p, () => 1, { inputs: seqs, confirm: confirm(0.95) })).program)).toBe(false);
    // an input program that itself checks at 0.91 only asks for 0.91
    expect(isInput((await simplifyProgram(p, () => 1, { inputs: seqs, confirm: confirm(0.91), confirmSamples: 600 })).program)).toBe(false);
  });

  it('stops with CancelledError when the signal fires', async () => {
    const p = model();
    const seqs = sequences(10, 3, 8, 2, 2);
    const ac = new AbortController();
    const evaluate = (q: Program): number => {
      ac.abort();
      return judge(p, seqs)(q);
    };
    await expect(simplifyProgram(p, evaluate, { inputs: seqs, signal: ac.signal })).rejects.toThrow('cancelled');
  });

  it('merges MLP-derived lines that became identical and removes the dead copy', async () => {
    // two heads' aggregates of token with no selectors, each read by a harden line and a projection
    const stmts: Statement[] = [
      { kind: 'aggregate', name: 'a1', line: 0, selectors: [], v: 'token' },
      { kind: 'aggregate', name: 'a2', line: 0, selectors: [], v: 'token' },
      { kind: 'elementwise', name: 'h1', line: 0, fn: { name: 'harden' }, inputs: ['a1'] },
      { kind: 'elementwise', name: 'h2', line: 0, fn: { name: 'harden' }, inputs: ['a2'] },
      { kind: 'project', name: 'logits1', line: 0, inp: 'h1', op: { kind: 'matrix', ref: 'B1' } },
      { kind: 'project', name: 'logits2', line: 0, inp: 'h2', op: { kind: 'matrix', ref: 'B2' } },
      { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['logits1', 'logits2'] },
    ];
    const rnd = noise(3);
    const p = program(stmts, { B1: matrix(V, V, (r, c) => (r === c ? 2 : 0) + 0.1 * rnd()), B2: matrix(V, V, (r, c) => (r === c ? 1 : 0) + 0.1 * rnd()) });
    const seqs = sequences(30, 3, 16, 2, 5);
    const strict = judge(p, seqs);
    const result = await simplifyProgram(p, strict, { inputs: seqs, stages: { attention: false, round: false } });
    expect(result.stats.merged).toBe(3);
    expect(result.program.statements.map((s) => s.name)).toEqual(['a1', 'h1', 'logits1', 'prediction']);
    expect(strict(result.program)).toBe(1);
  });
});

const f32 = (m: Matrix): Matrix => ({ ...m, data: Float32Array.from(m.data) });

describe('round trip and size guard', () => {
  it('writes the simplified program with the language printer and reads it back with identical logits', async () => {
    const rnd = noise(41);
    const P = 24;
    const V = 6;
    const model: Program = {
      ...program(
        [
          { kind: 'select', name: 's1', line: 0, q: 'pos', k: 'pos', op: { kind: 'matrix', ref: 'PREV' } },
          { kind: 'aggregate', name: 'a1', line: 0, selectors: ['s1'], v: 'token' },
          { kind: 'project', name: 'logits1', line: 0, inp: 'a1', op: { kind: 'matrix', ref: 'PERM' } },
          { kind: 'project', name: 'logits2', line: 0, inp: 'pos', op: { kind: 'matrix', ref: 'POSB' } },
          { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['logits1', 'logits2'] },
        ],
        {
          // float32 like the decompiler's matrices (the sidecar stores float32)
          PREV: f32(matrix(P, P, (q, k) => (k === q - 1 ? 9 : 0) + 0.5 * rnd())),
          PERM: f32(matrix(V, V, (r, c) => ((r === 0 && c === 1) || (r === 1 && c === 0) ? 6.3 : 0) + 0.3 * rnd())),
          POSB: f32(matrix(P, V, (r, c) => (c === 4 && r > 20 ? 0.4 : 0) + 0.2 * rnd())),
        },
        {},
        P,
      ),
    };
    const seqs = sequences(40, 3, 24, 2, 77);
    const evaluate = judge(model, seqs);
    const result = await simplifyProgram(model, evaluate, { inputs: seqs });
    // matrices the stage made hold float32-representable values (the sidecar stores float32)
    for (const [ref, m] of result.program.matrices) if (!model.matrices.has(ref)) for (const v of m.data) expect(Math.fround(v)).toBe(v);
    const dir = mkdtempSync(join(tmpdir(), 'rasp-prim-rt-'));
    const file = join(dir, 'p.rasp');
    await writeProgramFiles(result.program, file);
    const back = await loadProgramFile(file);
    const a = runBatch(result.program, seqs);
    const b = runBatch(back, seqs);
    a.forEach((r, i) => expect(Array.from(b[i].logits)).toEqual(Array.from(r.logits)));
    expect(evaluate(back)).toBe(result.stats.match);
  });

  it('returns programs above maxStatements untouched apart from dead code, saying why', async () => {
    const p = program([
      { kind: 'aggregate', name: 'a1', line: 0, selectors: [], v: 'token' },
      { kind: 'aggregate', name: 'unused', line: 0, selectors: [], v: 'pos' },
      { kind: 'project', name: 'logits1', line: 0, inp: 'a1', op: { kind: 'matrix', ref: 'B' } },
      { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['logits1'] },
    ], { B: matrix(6, 6, (r, c) => (r === c ? 1 : 0)) });
    let calls = 0;
    const result = await simplifyProgram(p, () => {
      calls++;
      return 1;
    }, { inputs: [], maxStatements: 3 });
    expect(calls).toBe(0);
    expect(result.stats.skipped).toContain('4 statements');
    expect(result.program.statements.map((s) => s.name)).toEqual(['a1', 'logits1', 'prediction']);
  });
});
