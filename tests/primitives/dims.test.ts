// Head-dimension provenance: on a GPT-2 whose weights plant the attention pattern in one head dimension (and the
// value in another) over seeded noise everywhere else, the dims found for the select and the aggregate are exactly
// the planted ones; a matrix that is not the model's product gets none; `rasp info --json` of a program extracted
// from that model lists them, and the language server's hover shows them.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createProtocolConnection, StreamMessageReader, StreamMessageWriter, type Hover, type PublishDiagnosticsParams } from 'vscode-languageserver-protocol/node';
import { describe, expect, it } from 'vitest';
import { attributeHeadDims, primitivesStage, screeningInputs, type HeadDimExplanation } from '../../server/src/decompile/primitives';
import { Execution } from '../../server/src/interpreter';
import { extract } from '../../server/src/decompile';
import { saveModel } from '../../server/src/model/load';
import type { Gpt2Config, Gpt2Weights, LoadedModel } from '../../server/src/model/types';
import { randomWeights } from '../../server/src/model/weights';
import { formatAnnotation, parseAnnotation } from '../../server/src/program/provenance';
import type { Matrix, Program, Statement } from '../../server/src/program/types';
import { getTask, sampleBins } from '../../server/src/tasks';
import { Rng } from '../../server/src/util/rng';

const task = getTask('bin_majority'); // vocabulary 0, 1, <bos>, <sep>, <eos>, <pad>
const d = 8; // one head: d_head = 8
const Q_DIM = 3;
const V_DIM = 5;
/** The bit direction: zero mean (the layer norm keeps it), |v|² = d. */
const bit = [1, -1, 1, -1, 1, -1, 1, -1];

/**
 * Noise (std 0.05, 0.3 in the attention weights) everywhere, then: token 0 = +bit, token 1 = -bit; query and key dim Q_DIM read the bit with
 * opposite signs (a query attends to the other bit, scores ~ ±6); value dim V_DIM reads the bit and W_O writes it
 * back 3x as strongly as the token itself, so the prediction at a position is the bit the head attended to.
 */
function plantedModel(): { config: Gpt2Config; weights: Gpt2Weights } {
  const config: Gpt2Config = {
    architecture: 'GPT2LMHeadModel',
    nLayer: 1,
    nHead: 1,
    nEmbd: d,
    nPositions: task.nPositions,
    vocabSize: task.vocab.length,
    activation: 'gelu_new',
    lnEps: 1e-5,
  };
  const rng = new Rng(11);
  const weights = randomWeights(config, () => rng.next(), 0.05);
  const wte = weights.wte.data;
  for (let t = 2; t < config.vocabSize; t++) for (let i = 0; i < d; i++) wte[t * d + i] *= 20; // specials: std 1
  for (let i = 0; i < d; i++) {
    wte[0 * d + i] = bit[i];
    wte[1 * d + i] = -bit[i];
  }
  const attn = weights.blocks[0].attn.cAttnW.data; // [d, 3d]: q | k | v columns
  for (let i = 0; i < attn.length; i++) attn[i] *= 6; // attention noise std 0.3
  for (let i = 0; i < d; i++) {
    attn[i * 3 * d + Q_DIM] = 0.5 * bit[i];
    attn[i * 3 * d + d + Q_DIM] = -0.5 * bit[i];
    attn[i * 3 * d + 2 * d + V_DIM] = 0.5 * bit[i];
  }
  const proj = weights.blocks[0].attn.cProjW.data; // [d_head, d]
  for (let i = 0; i < d; i++) proj[V_DIM * d + i] = (3 * bit[i]) / Math.sqrt(d);
  return { config, weights };
}

function loaded(m: { config: Gpt2Config; weights: Gpt2Weights }): LoadedModel {
  return { dir: '', config: m.config, weights: m.weights, card: { task: task.name, objective: 'ce', vocab: [...task.vocab], source: 'card' }, sha256: '' };
}

// ---- an independent construction of the emitted matrices (d-rasp.md 5.4), as tests/decompile recomputes them ----

interface M {
  rows: number;
  cols: number;
  data: Float64Array;
}
function mul(a: M, b: M): M {
  const out = new Float64Array(a.rows * b.cols);
  for (let i = 0; i < a.rows; i++) for (let k = 0; k < a.cols; k++) for (let j = 0; j < b.cols; j++) out[i * b.cols + j] += a.data[i * a.cols + k] * b.data[k * b.cols + j];
  return { rows: a.rows, cols: b.cols, data: out };
}
function transpose(a: M): M {
  const out = new Float64Array(a.rows * a.cols);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) out[j * a.rows + i] = a.data[i * a.cols + j];
  return { rows: a.cols, cols: a.rows, data: out };
}
/** (I - 11ᵀ/d) diag(γ) / sqrt(var + eps) */
function lnMatrix(gamma: Float32Array, variance: number): M {
  const s = 1 / Math.sqrt(variance + 1e-5);
  const data = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) data[i * d + j] = ((i === j ? 1 : 0) - 1 / d) * gamma[j] * s;
  return { rows: d, cols: d, data };
}
function cols(w: Float32Array, total: number, c0: number, n: number): M {
  const data = new Float64Array(d * n);
  for (let r = 0; r < d; r++) for (let c = 0; c < n; c++) data[r * n + c] = w[r * total + c0 + c];
  return { rows: d, cols: n, data };
}
const f32 = (m: M): Matrix => ({ rows: m.rows, cols: m.cols, data: Float32Array.from(m.data) });

/**
 * The program the decompiler emits for the head's kept paths (token only), with made-up learned layer-norm
 * variances (the stage must fit the scale, not know it): a pair select, a key-only select, their aggregate and
 * the projections.
 */
function emitted(w: Gpt2Weights, perturb = 0): Program {
  const b = w.blocks[0];
  const V = task.vocab.length;
  const E: M = { rows: V, cols: d, data: Float64Array.from(w.wte.data) };
  const g = b.ln1.weight.data;
  const Qs = mul(mul(E, lnMatrix(g, 1.7)), cols(b.attn.cAttnW.data, 3 * d, 0, d));
  const Ks = mul(mul(E, lnMatrix(g, 0.6)), cols(b.attn.cAttnW.data, 3 * d, d, d));
  const A = mul(Qs, transpose(Ks));
  const noise = new Rng(5);
  for (let i = 0; i < A.data.length; i++) A.data[i] += perturb * (noise.next() * 2 - 1);
  const beta: M = { rows: 1, cols: d, data: Float64Array.from(b.attn.cAttnB.data.subarray(0, d)) };
  const ov = mul(mul(mul(E, lnMatrix(g, 0.9)), cols(b.attn.cAttnW.data, 3 * d, 2 * d, d)), { rows: d, cols: d, data: Float64Array.from(b.attn.cProjW.data) });
  const wteT = transpose(E);
  const lnF = lnMatrix(w.lnF.weight.data, 2);
  const prov = (paths: { q?: string; k?: string; v?: string; input?: string }, head: number | null = 0): Statement['provenance'] => ({ layer: 0, head, mlp: false, paths });
  const statements: Statement[] = [
    { kind: 'select', name: 's1', line: 0, q: 'token', k: 'token', op: { kind: 'matrix', ref: 'M1' }, provenance: prov({ q: 'wte', k: 'wte' }) },
    { kind: 'select', name: 's2', line: 0, k: 'token', op: { kind: 'matrix', ref: 'M2' }, provenance: prov({ k: 'wte' }) },
    { kind: 'aggregate', name: 'a1', line: 0, selectors: ['s1', 's2'], v: 'token', provenance: prov({ v: 'wte' }) },
    { kind: 'project', name: 'logits1', line: 0, inp: 'a1', op: { kind: 'matrix', ref: 'M3' }, provenance: prov({ input: 'attn_output-0-0-wte' }, null) },
    { kind: 'project', name: 'logits2', line: 0, inp: 'token', op: { kind: 'matrix', ref: 'M4' }, provenance: prov({ input: 'wte' }, null) },
    { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['logits1', 'logits2'] },
  ];
  return {
    header: { vocab: [...task.vocab], special: { bos: 2, sep: 3, eos: 4, pad: 5 }, positions: task.nPositions, output: 'softmax', dHead: d, task: task.name },
    statements,
    matrices: new Map([
      ['M1', f32(A)],
      ['M2', f32(mul(beta, transpose(Ks)))],
      ['M3', f32(mul(mul(ov, lnF), wteT))],
      ['M4', f32(mul(mul(E, lnF), wteT))],
    ]),
    mlps: new Map(),
  };
}

const inputs = sampleBins(task, [[1, 50]], 40, 3)[0];

describe('head-dimension provenance', () => {
  it('finds exactly the planted query/key dim for the select and the planted value dim for the aggregate', () => {
    const m = plantedModel();
    const program = emitted(m.weights);
    const r = attributeHeadDims(program, loaded(m), inputs);
    const byLine = new Map(r.explanations.map((e) => [e.line, e]));
    const s1 = byLine.get('s1')!;
    expect(s1.skipped).toBeUndefined();
    expect(s1.misfit!).toBeLessThan(1e-5); // the scale was fitted; the terms are the model's
    expect(s1.dims.map((x) => x.index)).toEqual([Q_DIM]);
    expect(s1.dims[0].score).toBeGreaterThan(0.9);
    expect(s1.tv!).toBeLessThanOrEqual(0.05);
    expect(s1.argmaxAgreement!).toBeGreaterThan(0.95);
    // the other dims are noise, not zeros: they do score, a little
    expect(s1.shares.filter((v, i) => i !== Q_DIM && v > 0).length).toBe(d - 1);
    const a1 = byLine.get('a1')!;
    expect(a1.dims.map((x) => x.index)).toEqual([V_DIM]);
    expect(a1.fvu!).toBeLessThan(0.1);
    // the key-only select is decomposed too (its constant query fitted to its scores)
    const s2 = byLine.get('s2')!;
    expect(s2.skipped).toBeUndefined();
    expect(s2.misfit!).toBeLessThan(1e-3);
    expect(s2.dims.length).toBeGreaterThan(0);
    // provenance: indices and scores, printed in the annotation and read back
    const line = r.program.statements.find((s) => s.name === 's1')!;
    expect(line.provenance!.dims).toEqual([Q_DIM]);
    expect(line.provenance!.dimScores).toEqual([s1.dims[0].score]);
    const text = formatAnnotation(line.provenance!);
    expect(text).toMatch(new RegExp(`dims=${Q_DIM}:(1|0\\.9\\d*)$`));
    expect(parseAnnotation(text).provenance).toEqual(line.provenance);
    expect(parseAnnotation('# layer 0 head 0 dims=3,1').provenance?.dimScores).toBeUndefined();
    expect(parseAnnotation('# layer 0 head 0 dims=3:0.5,1').problems[0].message).toMatch(/every head dimension or for none/);
    // the input program is left as it was
    expect(program.statements[0].provenance!.dims).toBeUndefined();
  });

  it('lists the top dims in the annotation and counts the rest (+N); the explanation keeps them all', () => {
    const m = plantedModel();
    // coverage 1: the aggregate keeps every dim that carries any output variance (all 8, noise included)
    const r = attributeHeadDims(emitted(m.weights), loaded(m), inputs, { coverage: 1, annotatedDims: 2 });
    const a1 = r.explanations.find((e) => e.line === 'a1')!;
    expect(a1.dims).toHaveLength(d);
    const p = r.program.statements.find((s) => s.name === 'a1')!.provenance!;
    expect(p.dims).toEqual(a1.dims.slice(0, 2).map((x) => x.index));
    expect(p.dimScores).toEqual(a1.dims.slice(0, 2).map((x) => x.score));
    expect(p.dimsMore).toBe(d - 2);
    const text = formatAnnotation(p);
    expect(text).toMatch(new RegExp(`dims=\\d:[\\d.]+,\\d:[\\d.]+,\\+${d - 2}$`));
    expect(parseAnnotation(text).provenance).toEqual(p);
    // `+N` only as the last item, after at least one dim
    expect(parseAnnotation('# layer 0 head 0 dims=+3').problems[0].message).toMatch(/invalid head dimension '\+3'/);
    expect(parseAnnotation('# layer 0 head 0 dims=1,+3,2').problems[0].message).toMatch(/invalid head dimension '\+3'/);
  });

  it('keeps more dims when the pattern is spread over two of them', () => {
    const m = plantedModel();
    const attn = m.weights.blocks[0].attn.cAttnW.data;
    // dim 6 now carries as much of the pattern as dim 3 (half each): neither alone keeps the attention
    for (let i = 0; i < d; i++) {
      attn[i * 3 * d + Q_DIM] *= Math.SQRT1_2;
      attn[i * 3 * d + d + Q_DIM] *= Math.SQRT1_2;
      attn[i * 3 * d + 6] = attn[i * 3 * d + Q_DIM];
      attn[i * 3 * d + d + 6] = attn[i * 3 * d + d + Q_DIM];
    }
    const r = attributeHeadDims(emitted(m.weights), loaded(m), inputs);
    const s1 = r.explanations.find((e) => e.line === 's1')!;
    expect(s1.dims.map((x) => x.index).sort()).toEqual([Q_DIM, 6]);
  });

  it("reports the kept prefix's attention change as an independent recomputation finds it, past the first prefixes", () => {
    const m = plantedModel();
    const attn = m.weights.blocks[0].attn.cAttnW.data;
    // four dims carry a quarter of the pattern each: the kept prefix is past the first round (prefixes 0-1)
    const spread = [Q_DIM, 6, 1, 4];
    for (let i = 0; i < d; i++) {
      const q = attn[i * 3 * d + Q_DIM] / 2;
      const k = attn[i * 3 * d + d + Q_DIM] / 2;
      for (const x of spread) {
        attn[i * 3 * d + x] = q;
        attn[i * 3 * d + d + x] = k;
      }
    }
    const program = emitted(m.weights);
    const s1 = attributeHeadDims(program, loaded(m), inputs).explanations.find((e) => e.line === 's1')!;
    expect(s1.dims.length).toBeGreaterThanOrEqual(2);
    for (const x of s1.dims) expect(spread).toContain(x.index);
    // per-dim terms of the select, as the test builds the matrix: A = Σ_d Qs[:, d] Ks[:, d]ᵀ
    const b = m.weights.blocks[0];
    const E: M = { rows: task.vocab.length, cols: d, data: Float64Array.from(m.weights.wte.data) };
    const Qs = mul(mul(E, lnMatrix(b.ln1.weight.data, 1.7)), cols(b.attn.cAttnW.data, 3 * d, 0, d));
    const Ks = mul(mul(E, lnMatrix(b.ln1.weight.data, 0.6)), cols(b.attn.cAttnW.data, 3 * d, d, d));
    const kept = s1.dims.map((x) => x.index);
    let tv = 0;
    let agree = 0;
    let queries = 0;
    for (const seq of inputs) {
      const ex = new Execution(program, [...seq]);
      while (ex.index <= 2) ex.step();
      const n = seq.length;
      const W = ex.attention('a1')!;
      const other = ex.selector('s2')!.scores;
      for (let i = 1; i < n; i++) {
        const z = Array.from({ length: i + 1 }, (_, j) => {
          let sc = other[i * n + j];
          for (const x of kept) sc += Qs.data[seq[i] * d + x] * Ks.data[seq[j] * d + x];
          return sc / Math.sqrt(d);
        });
        const max = Math.max(...z);
        const e = z.map((v) => Math.exp(v - max));
        const sum = e.reduce((x, y) => x + y, 0);
        const p = e.map((v) => v / sum);
        tv += p.reduce((acc, v, j) => acc + Math.abs(v - W[i * n + j]), 0) / 2;
        const ref = Array.from({ length: i + 1 }, (_, j) => W[i * n + j]);
        const fav = p.indexOf(Math.max(...p));
        if (ref[fav] >= Math.max(...ref) - 0.01) agree++;
        queries++;
      }
    }
    expect(s1.tv!).toBeCloseTo(tv / queries, 3);
    expect(s1.argmaxAgreement!).toBeCloseTo(agree / queries, 2);
  });

  it('gives a program the stage leaves alone (above maxStatements) its head dims on the screening sequences', async () => {
    const m = plantedModel();
    const program = emitted(m.weights);
    // 36 unused copies of the token projection: 42 statements, dead code the stage would remove
    const dead: Statement[] = Array.from({ length: 36 }, (_, i) => ({ ...program.statements[4], name: `unused${i}` }));
    const big: Program = { ...program, statements: [...program.statements.slice(0, 5), ...dead, program.statements[5]] };
    const r = await primitivesStage(big, loaded(m), task, { screenPerBin: 20 });
    expect(r.stats.skipped).toMatch(/42 statements/);
    expect(r.program.statements.map((s) => s.name)).toEqual(program.statements.map((s) => s.name));
    const want = attributeHeadDims(big, loaded(m), screeningInputs(task, { screenPerBin: 20 }).slice(0, 150));
    expect(r.heads).toEqual(want.explanations);
  });

  it('attributes nothing to a matrix that is not the model product, and says why', () => {
    const m = plantedModel();
    const r = attributeHeadDims(emitted(m.weights, 0.5), loaded(m), inputs);
    const s1 = r.explanations.find((e) => e.line === 's1')!;
    expect(s1.dims).toEqual([]);
    expect(s1.skipped).toMatch(/do not reproduce the op matrix/);
    expect(r.program.statements.find((s) => s.name === 's1')!.provenance!.dims).toBeUndefined();
  });
});

describe('rasp info --json of an extracted program', () => {
  it('lists the head dims of its select and aggregate lines', async () => {
    if (!existsSync('out/cli.cjs')) throw new Error('run `npm run build` first: the CLI bundle is missing');
    const m = plantedModel();
    const dir = join(mkdtempSync(join(tmpdir(), 'rasp-dims-')), 'bin_majority-planted');
    await saveModel(dir, m.config, m.weights, { task: task.name, objective: 'ce', vocab: [...task.vocab], source: 'card' });
    const out = join(dir, '..', 'planted.rasp');
    await extract({ model: dir, out, runs: 1, stage1Steps: 60, stage2Steps: 40, faithfulSteps: 20, checkSamples: 8, searchSamples: 4, unprunedCheckSamples: 0 });
    const r = spawnSync(process.execPath, ['bin/rasp.cjs', 'info', out, '--json'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout) as { statements: { name: string; kind: string; head: number | null; paths: Record<string, string | null>; dims: number[]; dimScores?: number[] }[] };
    const selects = info.statements.filter((s) => s.kind === 'select');
    expect(selects.length).toBeGreaterThan(0);
    for (const s of selects) {
      expect(s.dims.length, s.name).toBeGreaterThan(0);
      expect(s.dimScores?.length).toBe(s.dims.length);
    }
    const tokenSelect = selects.find((s) => s.paths.q === 'wte' && s.paths.k === 'wte');
    expect(tokenSelect?.dims).toEqual([Q_DIM]);
    const valueLine = info.statements.find((s) => s.kind === 'aggregate' && s.paths.v === 'wte');
    expect(valueLine?.dims).toEqual([V_DIM]);
    // the report carries every line's full explanation (all kept dims, every dim's share, the checks)
    const report = JSON.parse(readFileSync(out.replace(/\.rasp$/, '.report.json'), 'utf8')) as { primitives?: { heads?: HeadDimExplanation[] } };
    const heads = report.primitives?.heads ?? [];
    expect(heads.find((h) => h.line === tokenSelect!.name)?.dims.map((x) => x.index)).toEqual([Q_DIM]);
    for (const h of heads) expect(h.shares, h.line).toHaveLength(d);

    // the hover of the select line (built language server over stdio) names them with their scores
    const proc = spawn(process.execPath, ['out/server.cjs', '--stdio'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const conn = createProtocolConnection(new StreamMessageReader(proc.stdout), new StreamMessageWriter(proc.stdin));
    try {
      const uri = pathToFileURL(out).toString();
      const opened = new Promise<void>((resolve) =>
        conn.onNotification('textDocument/publishDiagnostics', (p: PublishDiagnosticsParams) => {
          if (p.uri === uri) resolve();
        }),
      );
      conn.listen();
      await conn.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: { textDocument: { hover: { contentFormat: ['markdown'] } } } });
      await conn.sendNotification('initialized', {});
      const text = readFileSync(out, 'utf8');
      await conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'rasp', version: 1, text } });
      await opened;
      const line = text.split('\n').findIndex((l) => l.startsWith(`${tokenSelect!.name} =`));
      const hover = (await conn.sendRequest('textDocument/hover', { textDocument: { uri }, position: { line, character: 1 } })) as Hover;
      expect((hover.contents as { value: string }).value).toContain(`head dimensions: ${Q_DIM} (${tokenSelect!.dimScores![0]})`);
      await conn.sendRequest('shutdown');
      await conn.sendNotification('exit');
    } finally {
      conn.dispose();
      proc.kill();
    }
  }, 600_000);
});
