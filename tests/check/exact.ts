// A tiny GPT-2 (1 layer, 2 heads, bce_D2) and the D-RASP program that computes exactly what it computes, written
// by hand from its weights, so a test knows which statement is at fault when the program is made wrong.
//
// LayerNorm is the one non-linear step between the embeddings and the logits. The model keeps every residual
// activation near 1e-3 (variance ~1e-6, far below eps = 1) and scales the LayerNorm weights up, so each LayerNorm
// is the linear map g * (x - mean(x)) up to a relative error of ~1e-6; the MLP is switched off (zero weights, zero
// output). Then attention scores are bilinear in the token and position one-hots (four selects per head), the
// heads' outputs are linear in the aggregated one-hots, and the logits are the sum of six projections.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveModel } from '../../server/src/model/load';
import type { Gpt2Config, Gpt2Weights, Tensor } from '../../server/src/model/types';
import type { Matrix, Program, Provenance, Statement } from '../../server/src/program/types';
import { getTask } from '../../server/src/tasks';
import { Rng } from '../../server/src/util/rng';

const D = 8;
const HEADS = 2;
const DH = D / HEADS;
/** Size of the residual activations (embeddings, head outputs). */
const SMALL = 1e-3;
/** LayerNorm weight: undoes SMALL, so queries, keys and values are O(1). */
const GAIN = 1 / SMALL;
/** Final LayerNorm weight: logits of order 1. */
const FINAL_GAIN = 1 / (SMALL * SMALL);

export interface ExactModel {
  dir: string;
  config: Gpt2Config;
  weights: Gpt2Weights;
  /** The exact program (statements have line 0; write it to get lines). */
  program: Program;
}

type Rows = number[][];

function centre(v: number[]): number[] {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  return v.map((x) => x - m);
}

/** rows x D times D x cols, taking the columns [c0, c0 + cols) of a row-major D x stride matrix. */
function times(rows: Rows, w: Float32Array, stride: number, c0: number, cols: number, r0 = 0): Rows {
  return rows.map((row) =>
    Array.from({ length: cols }, (_, c) => {
      let s = 0;
      for (let i = 0; i < row.length; i++) s += row[i] * w[(r0 + i) * stride + c0 + c];
      return s;
    }),
  );
}

function timesT(a: Rows, b: Rows): Matrix {
  const data = new Float64Array(a.length * b.length);
  a.forEach((x, i) => b.forEach((y, j) => (data[i * b.length + j] = x.reduce((s, v, k) => s + v * y[k], 0))));
  return { rows: a.length, cols: b.length, data };
}

function rowsOf(t: Tensor, n: number): Rows {
  const cols = t.data.length / n;
  return Array.from({ length: n }, (_, r) => Array.from(t.data.subarray(r * cols, (r + 1) * cols)));
}

export async function exactModel(seed = 7): Promise<ExactModel> {
  const task = getTask('bce_D2');
  const V = task.vocab.length;
  const POSITIONS = task.nPositions;
  const config: Gpt2Config = {
    architecture: 'GPT2BCELMHeadModel',
    nLayer: 1,
    nHead: HEADS,
    nEmbd: D,
    nPositions: POSITIONS,
    vocabSize: V,
    activation: 'gelu_new',
    lnEps: 1,
  };
  const rng = new Rng(seed);
  const normal = (): number => Math.sqrt(-2 * Math.log(Math.max(rng.next(), 1e-12))) * Math.cos(2 * Math.PI * rng.next());
  const t = (shape: number[], f: () => number): Tensor => {
    const n = shape.reduce((a, b) => a * b, 1);
    return { shape, data: Float32Array.from({ length: n }, f) };
  };
  const zero = (shape: number[]) => t(shape, () => 0);
  const cAttnW = t([D, 3 * D], () => 0);
  // queries and keys O(0.6) per weight: scores of a few units, so attention is sharp enough to matter
  for (let r = 0; r < D; r++) for (let c = 0; c < 3 * D; c++) cAttnW.data[r * 3 * D + c] = (c < 2 * D ? 0.6 : 1) * normal();
  const weights: Gpt2Weights = {
    wte: t([V, D], () => SMALL * normal()),
    wpe: t([POSITIONS, D], () => SMALL * normal()),
    blocks: [
      {
        ln1: { weight: t([D], () => GAIN), bias: zero([D]) },
        attn: { cAttnW, cAttnB: zero([3 * D]), cProjW: t([D, D], () => SMALL * normal()), cProjB: zero([D]) },
        ln2: { weight: t([D], () => 1), bias: zero([D]) },
        mlp: { fcW: zero([D, 4 * D]), fcB: zero([4 * D]), projW: zero([4 * D, D]), projB: zero([D]) },
      },
    ],
    lnF: { weight: t([D], () => FINAL_GAIN), bias: zero([D]) },
  };
  const dir = join(mkdtempSync(join(tmpdir(), 'rasp-check-')), 'bce_D2-exact');
  await saveModel(dir, config, weights, { task: task.name, objective: 'bce', vocab: [...task.vocab], source: 'card' });

  // LN(x) = GAIN * (x - mean) / sqrt(var + 1) ~ GAIN * centre(x): token and position parts separately.
  const ln1 = (rows: Rows) => rows.map((r) => centre(r).map((x) => x * GAIN));
  const tokIn = ln1(rowsOf(weights.wte, V));
  const posIn = ln1(rowsOf(weights.wpe, POSITIONS));
  const wte = rowsOf(weights.wte, V);
  // logits of a residual part u: FINAL_GAIN * centre(u) . wte[c]
  const unembed = (u: Rows): Matrix => timesT(u.map((r) => centre(r).map((x) => x * FINAL_GAIN)), wte);

  const matrices = new Map<string, Matrix>();
  const statements: Statement[] = [];
  const prov = (head: number | null, paths: Provenance['paths']): Provenance => ({ layer: 0, head, mlp: false, paths });
  const terms: string[] = [];
  const project = (inp: string, m: Matrix, path: string) => {
    const name = `logits${terms.length + 1}`;
    matrices.set(`P${terms.length + 1}`, m);
    statements.push({ kind: 'project', name, line: 0, inp, op: { kind: 'matrix', ref: `P${terms.length + 1}` }, provenance: prov(null, { input: path }) });
    terms.push(name);
  };
  project('token', unembed(rowsOf(weights.wte, V)), 'wte');
  project('pos', unembed(rowsOf(weights.wpe, POSITIONS)), 'wpe');
  let nSel = 0;
  let nAgg = 0;
  for (let h = 0; h < HEADS; h++) {
    const q = { token: times(tokIn, cAttnW.data, 3 * D, h * DH, DH), pos: times(posIn, cAttnW.data, 3 * D, h * DH, DH) };
    const k = { token: times(tokIn, cAttnW.data, 3 * D, D + h * DH, DH), pos: times(posIn, cAttnW.data, 3 * D, D + h * DH, DH) };
    const selectors: string[] = [];
    for (const qs of ['token', 'pos'] as const) {
      for (const ks of ['token', 'pos'] as const) {
        const name = `s${++nSel}`;
        // the interpreter divides the summed scores by sqrt(d_head), as the model does
        matrices.set(`S${nSel}`, timesT(q[qs], k[ks]));
        statements.push({ kind: 'select', name, line: 0, q: qs, k: ks, op: { kind: 'matrix', ref: `S${nSel}` }, provenance: prov(h, { q: qs === 'token' ? 'wte' : 'wpe', k: ks === 'token' ? 'wte' : 'wpe' }) });
        selectors.push(name);
      }
    }
    for (const vs of ['token', 'pos'] as const) {
      const name = `a${++nAgg}`;
      statements.push({ kind: 'aggregate', name, line: 0, selectors, v: vs, provenance: prov(h, { v: vs === 'token' ? 'wte' : 'wpe' }) });
      // the head's output on this value path, in the residual stream: LN1(part) W_V[h] W_O[h]
      const values = times(vs === 'token' ? tokIn : posIn, cAttnW.data, 3 * D, 2 * D + h * DH, DH);
      project(name, unembed(times(values, weights.blocks[0].attn.cProjW.data, D, 0, D, h * DH)), `attn_output-0-${h}-${vs === 'token' ? 'wte' : 'wpe'}`);
    }
  }
  statements.push({ kind: 'prediction', name: 'prediction', line: 0, fn: 'sigmoid', terms, provenance: prov(null, {}) });
  const program: Program = {
    header: { name: 'exact', vocab: [...task.vocab], special: { bos: 2, sep: 3, eos: 4, pad: 5 }, positions: POSITIONS, output: 'sigmoid', dHead: DH, task: task.name },
    statements,
    matrices,
    mlps: new Map(),
  };
  return { dir, config, weights, program };
}

/** A copy of the program with one select's op matrix negated (a deliberately wrong select). */
export function flipSelect(program: Program, name: string): Program {
  const s = program.statements.find((x) => x.name === name);
  if (!s || s.kind !== 'select' || s.op.kind !== 'matrix') throw new Error(`${name} is not a matrix select`);
  const m = program.matrices.get(s.op.ref)!;
  const matrices = new Map(program.matrices);
  matrices.set(s.op.ref, { ...m, data: m.data.map((x) => -x) });
  return { ...program, matrices };
}

/** A copy with one projection's matrix negated (a wrong readout, not an attention fault). */
export function flipProjection(program: Program, name: string): Program {
  const s = program.statements.find((x) => x.name === name);
  if (!s || s.kind !== 'project' || s.op.kind !== 'matrix') throw new Error(`${name} is not a matrix projection`);
  const m = program.matrices.get(s.op.ref)!;
  const matrices = new Map(program.matrices);
  matrices.set(s.op.ref, { ...m, data: m.data.map((x) => -x) });
  return { ...program, matrices };
}
