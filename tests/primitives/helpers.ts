// Small in-memory programs and MLPs for the primitives tests.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../server/src/model/backend';
import { loadModel, saveModel } from '../../server/src/model/load';
import type { Gpt2Config, LoadedModel } from '../../server/src/model/types';
import { randomWeights } from '../../server/src/model/weights';
import type { Matrix, OpaqueMlp, Program, Statement } from '../../server/src/program/types';
import { getTask, type Task } from '../../server/src/tasks/index';
import { Rng } from '../../server/src/util/rng';

export const VOCAB = ['a', 'b', '<bos>', '<sep>', '<eos>', '<pad>'];

export function header(positions = 16, output: 'softmax' | 'sigmoid' = 'softmax'): Program['header'] {
  return { vocab: VOCAB, special: { bos: 2, sep: 3, eos: 4, pad: 5 }, positions, output, dHead: 4 };
}

export function program(statements: Statement[], matrices: Record<string, Matrix> = {}, mlps: Record<string, OpaqueMlp> = {}, positions = 16): Program {
  return { header: header(positions), statements, matrices: new Map(Object.entries(matrices)), mlps: new Map(Object.entries(mlps)) };
}

export function matrix(rows: number, cols: number, f: (r: number, c: number) => number): Matrix {
  const data = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) data[r * cols + c] = f(r, c);
  return { rows, cols, data };
}

/** Deterministic pseudo-random numbers in [-1, 1). */
export function noise(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  };
}

/**
 * An MLP reading one variable of `inSize` entries through a d_model = 2·inSize residual (entry i -> +1 at 2i and
 * -1 at 2i+1, so the layer norm's mean is 0 and it scales by 1/sqrt(var+eps) = 1). Hidden units 2i, 2i+1 form a
 * steep step "x_i > thr" (gelu(K(x-thr)) - gelu(K(x-thr)-1)), writing +1 to output coordinate 2i; `steps` lists
 * the entries that get a step, the other hidden units have constant activations (bias only) and large output
 * weights, so they must not be attributed.
 */
export function stepMlp(inSize: number, steps: number[], thr: number, hidden = 4 * 2 * inSize): OpaqueMlp {
  const d = 2 * inSize;
  const K = 200;
  const emb = matrix(inSize, d, (r, c) => (c === 2 * r ? 1 : c === 2 * r + 1 ? -1 : 0));
  const fcW = new Float64Array(d * hidden);
  const fcB = new Float32Array(hidden);
  const projW = new Float64Array(hidden * d);
  steps.forEach((i, n) => {
    const u = 2 * n;
    fcW[2 * i * hidden + u] = K;
    fcW[2 * i * hidden + u + 1] = K;
    fcB[u] = -K * thr;
    fcB[u + 1] = -K * thr - 1;
    projW[u * d + 2 * i] = 1;
    projW[(u + 1) * d + 2 * i] = -1;
  });
  for (let u = 2 * steps.length; u < hidden; u++) {
    fcB[u] = 0.5 + (u % 3);
    projW[u * d + (u % d)] = 3;
  }
  return {
    inputEmbeddings: [emb],
    lnGamma: new Float32Array(d).fill(1),
    lnVariance: 1 - 1e-5,
    lnEps: 1e-5,
    fcW: { rows: d, cols: hidden, data: fcW },
    fcB,
    projW: { rows: hidden, cols: d, data: projW },
    projB: new Float32Array(d),
  };
}

/** A random opaque MLP (weights in [-1, 1)) whose kernel skip paths (zero LN gains, dead units) are all taken. */
export function randomMlp(seed: number, sizes: number[], d: number, H: number, constant: boolean): OpaqueMlp {
  const rnd = noise(seed);
  const f32 = (k: number): Float32Array => Float32Array.from({ length: k }, () => rnd());
  return {
    inputEmbeddings: sizes.map((s) => matrix(s, d, () => Math.fround(rnd()))),
    ...(constant ? { constant: f32(d) } : {}),
    // zero gains (inputs exactly 0 after the layer norm) and strongly negative biases (activations exactly 0) take
    // the kernel's skip paths
    lnGamma: Float32Array.from(f32(d), (v, c) => (c % 5 === 0 ? 0 : v)),
    lnVariance: 0.7,
    lnEps: 1e-5,
    fcW: { rows: d, cols: H, data: f32(d * H) },
    fcB: Float32Array.from(f32(H), (v, u) => (u % 7 === 0 ? -60 : v)),
    projW: { rows: H, cols: d, data: f32(H * d) },
    projB: f32(d),
  };
}

/** A seeded 1-layer width-8 GPT-2 for bin_majority, written and loaded through the model's real reader. */
export async function tinyBinMajorityModel(seed: number): Promise<{ model: LoadedModel; task: Task }> {
  await initBackend();
  const task = getTask('bin_majority');
  const config: Gpt2Config = {
    architecture: 'GPT2LMHeadModel',
    nLayer: 1,
    nHead: 1,
    nEmbd: 8,
    nPositions: task.nPositions,
    vocabSize: task.vocab.length,
    activation: 'gelu_new',
    lnEps: 1e-5,
  };
  const rng = new Rng(seed);
  const dir = join(mkdtempSync(join(tmpdir(), 'rasp-prim-')), 'bin_majority-tiny');
  await saveModel(dir, config, randomWeights(config, () => rng.next(), 0.5), { task: task.name, objective: 'ce', vocab: [...task.vocab], source: 'card' });
  return { model: await loadModel(dir), task };
}
