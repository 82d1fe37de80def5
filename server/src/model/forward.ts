// GPT-2 forward pass on TensorFlow.js, exactly as Hugging Face computes it (pre-LN blocks, gelu_new, causal
// softmax attention scaled by 1/sqrt(d_head), tied unembedding without bias), batched, with hooks.
//
// Lower-level tensor API (everything the decompiler and training need):
//   const tm = createTfModel(config, weights, { trainable })   // parameters as tf tensors, or tf.Variables
//   const batch = makeBatch(config, seqs, { offset })           // right-padded ids + position ids
//   const out = forward(tm, batch, { hooks, record, dropout })  // call inside tf.tidy / tf.grad / minimize
//     out.logits [B, T, V]; out.contributions (when recorded): Map<name, [B, T, d]> where name is
//     'wte' | 'wpe' | 'attn_output-L-H' (z_h W_O[h], no c_proj bias) | 'attn_bias-L' (c_proj bias) | 'mlp-L';
//     their sum is the residual stream before ln_f. out.attention[L][H] is the [B, T, T] pattern.
//     With dropout (training), each layer's heads and c_proj bias are one contribution 'attn_output-L', since
//     HF drops out their sum.
//   hooks.contribution(name, value) may return a replacement (masking, ablation, patching) before it is added;
//   hooks.attention(layer, head, pattern) may replace a pattern. Replacements can depend on tf.Variables:
//   gradients flow through them (and, with trainable parameters, into the weights).
//   tm.dispose() frees the parameter tensors; tfModelWeights(tm) reads (trained) parameters back.
//
// Performance (see docs on tfjs wasm): every matmul is a single non-batched, non-transposed [N, k] x [k, m]
// product (XNNPACK fast path), with custom gradients that keep the backward pass on that path too; per-head
// Q/K/V/O weights avoid slicing big activations; gelu_new is computed through sigmoid (tanh is slow on wasm);
// frozen embeddings are gathered in plain JS, trainable ones by one-hot products (wasm lacks gather's gradient);
// attention's batched products run as depthwise convolutions.
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../util/errors';
import { initBackend } from './backend';
import type { Gpt2Config, Gpt2Weights, LoadedModel, Tensor } from './types';

export interface TfBlock {
  ln1g: tf.Tensor1D;
  ln1b: tf.Tensor1D;
  /** Raw HF parameters (Variables when trainable); per-head views below are derived from them. */
  cAttnW: tf.Tensor2D;
  cAttnB: tf.Tensor1D;
  cProjW: tf.Tensor2D;
  cProjB: tf.Tensor1D;
  ln2g: tf.Tensor1D;
  ln2b: tf.Tensor1D;
  fcW: tf.Tensor2D;
  fcB: tf.Tensor1D;
  projW: tf.Tensor2D;
  projB: tf.Tensor1D;
}

export interface TfParams {
  wte: tf.Tensor2D;
  wpe: tf.Tensor2D;
  blocks: TfBlock[];
  lnFg: tf.Tensor1D;
  lnFb: tf.Tensor1D;
}

/** Per-head slices and transposes precomputed for frozen parameters. */
interface FrozenBlock {
  q: Linear[];
  k: Linear[];
  v: Linear[];
  o: Linear[];
  fc: Linear;
  proj: Linear;
}

interface Linear {
  w: tf.Tensor2D;
  /** Pre-transposed weight for the input gradient (frozen layers). */
  wT: tf.Tensor2D;
  b?: tf.Tensor1D;
}

export interface TfModel {
  config: Gpt2Config;
  /** Parameters in HF layout; tf.Variables when created with trainable: true. */
  params: TfParams;
  trainable: boolean;
  /** Every Variable (trainable only), in a stable order, for optimizers. */
  variables: tf.Variable[];
  /** Plain-JS copies of the embeddings (frozen only): token/position rows are gathered without tfjs. */
  jsEmbeddings?: { wte: Float32Array; wpe: Float32Array };
  frozen?: { blocks: FrozenBlock[]; unembed: Linear };
  dispose(): void;
}

export interface CreateTfModelOptions {
  /** Parameters become tf.Variables (for training); default false (frozen constants, faster gradients). */
  trainable?: boolean;
}

/** Uploads weights as tf tensors (or Variables). Call initBackend() first. */
export function createTfModel(config: Gpt2Config, weights: Gpt2Weights, options: CreateTfModelOptions = {}): TfModel {
  const trainable = options.trainable ?? false;
  const variables: tf.Variable[] = [];
  const make = <R extends tf.Rank>(t: Tensor, name: string): tf.Tensor<R> => {
    const x = tf.tensor(t.data, t.shape);
    if (!trainable) return x as tf.Tensor<R>;
    const v = tf.variable(x, true, `${name}_${uniqueId++}`);
    x.dispose();
    variables.push(v);
    return v as unknown as tf.Tensor<R>;
  };
  const params: TfParams = {
    wte: make(weights.wte, 'wte'),
    wpe: make(weights.wpe, 'wpe'),
    blocks: weights.blocks.map((b, i) => ({
      ln1g: make(b.ln1.weight, `h${i}.ln1g`),
      ln1b: make(b.ln1.bias, `h${i}.ln1b`),
      cAttnW: make(b.attn.cAttnW, `h${i}.cAttnW`),
      cAttnB: make(b.attn.cAttnB, `h${i}.cAttnB`),
      cProjW: make(b.attn.cProjW, `h${i}.cProjW`),
      cProjB: make(b.attn.cProjB, `h${i}.cProjB`),
      ln2g: make(b.ln2.weight, `h${i}.ln2g`),
      ln2b: make(b.ln2.bias, `h${i}.ln2b`),
      fcW: make(b.mlp.fcW, `h${i}.fcW`),
      fcB: make(b.mlp.fcB, `h${i}.fcB`),
      projW: make(b.mlp.projW, `h${i}.projW`),
      projB: make(b.mlp.projB, `h${i}.projB`),
    })),
    lnFg: make(weights.lnF.weight, 'lnFg'),
    lnFb: make(weights.lnF.bias, 'lnFb'),
  };
  const model: TfModel = {
    config,
    params,
    trainable,
    variables,
    dispose: () => {
      const all: tf.Tensor[] = [params.wte, params.wpe, params.lnFg, params.lnFb];
      for (const b of params.blocks) all.push(...(Object.values(b) as tf.Tensor[]));
      if (model.frozen) {
        for (const fb of model.frozen.blocks) {
          for (const l of [...fb.q, ...fb.k, ...fb.v, ...fb.o, fb.fc, fb.proj]) all.push(l.w, l.wT, ...(l.b ? [l.b] : []));
        }
        all.push(model.frozen.unembed.w, model.frozen.unembed.wT);
      }
      for (const t of all) if (!t.isDisposed) t.dispose();
    },
  };
  if (!trainable) {
    model.jsEmbeddings = { wte: weights.wte.data, wpe: weights.wpe.data };
    // No tidy here: every tensor created is kept (slices and transposes of the weights).
    const lin = (w: tf.Tensor2D, b?: tf.Tensor1D): Linear => {
      const out: Linear = { w, wT: tf.transpose(w) };
      if (b) out.b = b;
      return out;
    };
    const d = config.nEmbd;
    const hd = d / config.nHead;
    const heads = [...Array(config.nHead).keys()];
    const blocks = params.blocks.map((b): FrozenBlock => {
      const headLin = (part: number, h: number): Linear =>
        lin(tf.slice(b.cAttnW, [0, part * d + h * hd], [d, hd]), tf.slice(b.cAttnB, [part * d + h * hd], [hd]));
      return {
        q: heads.map((h) => headLin(0, h)),
        k: heads.map((h) => headLin(1, h)),
        v: heads.map((h) => headLin(2, h)),
        o: heads.map((h) => lin(tf.slice(b.cProjW, [h * hd, 0], [hd, d]))),
        fc: lin(b.fcW, b.fcB),
        proj: lin(b.projW, b.projB),
      };
    });
    model.frozen = { blocks, unembed: { w: tf.transpose(params.wte), wT: params.wte } };
  }
  return model;
}

let uniqueId = 0;

/** Reads the (possibly trained) parameters back as plain weights. */
export async function tfModelWeights(model: TfModel): Promise<Gpt2Weights> {
  const read = async (t: tf.Tensor): Promise<Tensor> => ({ shape: [...t.shape], data: new Float32Array(await t.data()) });
  const p = model.params;
  const blocks = [];
  for (const b of p.blocks) {
    blocks.push({
      ln1: { weight: await read(b.ln1g), bias: await read(b.ln1b) },
      attn: { cAttnW: await read(b.cAttnW), cAttnB: await read(b.cAttnB), cProjW: await read(b.cProjW), cProjB: await read(b.cProjB) },
      ln2: { weight: await read(b.ln2g), bias: await read(b.ln2b) },
      mlp: { fcW: await read(b.fcW), fcB: await read(b.fcB), projW: await read(b.projW), projB: await read(b.projB) },
    });
  }
  return { wte: await read(p.wte), wpe: await read(p.wpe), blocks, lnF: { weight: await read(p.lnFg), bias: await read(p.lnFb) } };
}

// ---------------------------------------------------------------------------------------------------------------
// Batches

export interface Batch {
  /** Number of sequences and padded length. */
  B: number;
  T: number;
  /** Row-major [B, T] token ids, right-padded. */
  ids: Int32Array;
  /** Row-major [B, T] position ids (offset + t; pads repeat the last real position). */
  positions: Int32Array;
  /** Real length of each sequence. */
  lengths: number[];
}

export interface BatchOptions {
  /** Position-id offset: one for all sequences or one per sequence (training uses random offsets). Default 0. */
  offset?: number | number[];
  /** Id used for right padding (default: the config's pad id, else 0). Pads never affect real positions. */
  padId?: number;
}

/** Right-pads sequences into a batch, checking ids and position limits. */
export function makeBatch(config: Gpt2Config, seqs: readonly (readonly number[])[], options: BatchOptions = {}): Batch {
  if (seqs.length === 0) throw new UserError('empty batch: no sequences');
  const B = seqs.length;
  const T = Math.max(...seqs.map((s) => s.length));
  if (T === 0) throw new UserError('every sequence in the batch is empty');
  const pad = options.padId ?? config.padId ?? 0;
  const ids = new Int32Array(B * T);
  const positions = new Int32Array(B * T);
  seqs.forEach((s, b) => {
    const off = Array.isArray(options.offset) ? options.offset[b] : (options.offset ?? 0);
    if (!Number.isInteger(off) || off < 0) throw new UserError(`position offset ${off} must be a non-negative integer`);
    if (s.length > 0 && off + s.length > config.nPositions) {
      throw new UserError(
        `sequence ${b} has ${s.length} tokens${off ? ` at offset ${off}` : ''}, but the model has only ${config.nPositions} positions`,
      );
    }
    for (let t = 0; t < T; t++) {
      const real = t < s.length;
      const id = real ? s[t] : pad;
      if (!Number.isInteger(id) || id < 0 || id >= config.vocabSize) {
        throw new UserError(`token id ${id} at position ${t} of sequence ${b} is outside the vocabulary 0..${config.vocabSize - 1}`);
      }
      ids[b * T + t] = id;
      positions[b * T + t] = off + Math.min(t, Math.max(s.length - 1, 0));
    }
  });
  return { B, T, ids, positions, lengths: seqs.map((s) => s.length) };
}

// ---------------------------------------------------------------------------------------------------------------
// Forward

export interface ForwardHooks {
  /** Called for every residual contribution ([B, T, d]) before it is added; return a replacement or undefined. */
  contribution?: (name: string, value: tf.Tensor3D) => tf.Tensor3D | undefined | void;
  /** Called with each head's attention pattern ([B, T, T], rows sum to 1); return a replacement or undefined. */
  attention?: (layer: number, head: number, pattern: tf.Tensor3D) => tf.Tensor3D | undefined | void;
}

export interface ForwardOptions {
  hooks?: ForwardHooks;
  /** What to return besides the logits (the tensors are owned by the caller, like the logits). */
  record?: { contributions?: boolean; attention?: boolean; residual?: boolean };
  /** Training-time dropout (HF places: embeddings, attention probabilities, attention and MLP outputs). */
  dropout?: { rate: number; seed?: number };
}

export interface ForwardOutput {
  /** [B, T, V] */
  logits: tf.Tensor3D;
  /** Residual contributions by name (see the file header), when recorded. */
  contributions?: Map<string, tf.Tensor3D>;
  /** attention[layer][head]: [B, T, T], when recorded. */
  attention?: tf.Tensor3D[][];
  /** Residual stream before ln_f, [B, T, d], when recorded. */
  residual?: tf.Tensor3D;
}

/** Residual contribution names in the order they are added. */
export function contributionNames(config: Gpt2Config): string[] {
  const names = ['wte', 'wpe'];
  for (let l = 0; l < config.nLayer; l++) {
    for (let h = 0; h < config.nHead; h++) names.push(`attn_output-${l}-${h}`);
    names.push(`attn_bias-${l}`, `mlp-${l}`);
  }
  return names;
}

/**
 * Runs the model on a batch. Synchronous and tape-friendly: call it inside tf.tidy, tf.grad or an optimizer's
 * minimize. Requires an initialised backend (initBackend()).
 */
export function forward(model: TfModel, batch: Batch, options: ForwardOptions = {}): ForwardOutput {
  const { config, params } = model;
  const { B, T } = batch;
  const N = B * T;
  const d = config.nEmbd;
  const H = config.nHead;
  const hd = d / H;
  const hooks = options.hooks ?? {};
  const rec = options.record ?? {};
  const contributions = rec.contributions ? new Map<string, tf.Tensor3D>() : undefined;
  const attention: tf.Tensor3D[][] | undefined = rec.attention ? [] : undefined;
  const rate = options.dropout?.rate ?? 0;
  let seed = options.dropout?.seed;
  const drop = <T extends tf.Tensor>(x: T): T => (rate > 0 ? (tf.dropout(x, rate, undefined, seed === undefined ? undefined : seed++) as T) : x);

  // Adds a named contribution to the residual stream, through the hook.
  let resid: tf.Tensor2D | undefined;
  const add = (name: string, value2d: tf.Tensor2D): void => {
    let v = value2d.reshape([B, T, d]) as tf.Tensor3D;
    const replaced = hooks.contribution?.(name, v);
    if (replaced) {
      if (replaced.shape.length !== 3 || replaced.shape[0] !== B || replaced.shape[1] !== T || replaced.shape[2] !== d) {
        throw new Error(`contribution hook for ${name} returned shape [${replaced.shape.join(', ')}], expected [${B}, ${T}, ${d}]`);
      }
      v = replaced;
    }
    contributions?.set(name, v);
    const v2 = v.reshape([N, d]) as tf.Tensor2D;
    resid = resid ? (tf.add(resid, v2) as tf.Tensor2D) : v2;
  };

  // Embeddings.
  if (model.jsEmbeddings) {
    add('wte', gatherRows(model.jsEmbeddings.wte, d, batch.ids));
    add('wpe', gatherRows(model.jsEmbeddings.wpe, d, batch.positions));
  } else {
    const tokOH = tf.oneHot(tf.tensor1d(batch.ids, 'int32'), config.vocabSize).toFloat() as tf.Tensor2D;
    const posOH = tf.oneHot(tf.tensor1d(batch.positions, 'int32'), config.nPositions).toFloat() as tf.Tensor2D;
    add('wte', matMulTrainable(tokOH, params.wte));
    add('wpe', matMulTrainable(posOH, params.wpe));
  }
  if (rate > 0) resid = drop(resid as tf.Tensor2D);

  const mask = causalMask(T);
  const ones = tf.ones([N, 1]);
  const scale = 1 / Math.sqrt(hd);
  params.blocks.forEach((blk, l) => {
    const fb = model.frozen?.blocks[l];
    const x = layerNorm(resid as tf.Tensor2D, blk.ln1g, blk.ln1b, config.lnEps);
    const attnOuts: tf.Tensor2D[] = [];
    const headsOut: tf.Tensor3D[] = [];
    for (let h = 0; h < H; h++) {
      const proj = (part: number, lin: Linear | undefined): tf.Tensor2D =>
        lin
          ? linearFrozen(x, lin)
          : linearTrainable(
              x,
              tf.slice(blk.cAttnW, [0, part * d + h * hd], [d, hd]),
              tf.slice(blk.cAttnB, [part * d + h * hd], [hd]),
            );
      const q = tf.mul(proj(0, fb?.q[h]), scale).reshape([B, T, hd]) as tf.Tensor3D;
      const k = proj(1, fb?.k[h]).reshape([B, T, hd]) as tf.Tensor3D;
      const v = proj(2, fb?.v[h]).reshape([B, T, hd]) as tf.Tensor3D;
      const scores = tf.add(bmmNT(q, k), mask);
      let pattern = tf.softmax(scores) as tf.Tensor3D;
      const replaced = hooks.attention?.(l, h, pattern);
      if (replaced) {
        if (replaced.shape.length !== 3 || replaced.shape[0] !== B || replaced.shape[1] !== T || replaced.shape[2] !== T) {
          throw new Error(`attention hook for layer ${l} head ${h} returned shape [${replaced.shape.join(', ')}], expected [${B}, ${T}, ${T}]`);
        }
        pattern = replaced;
      }
      headsOut.push(pattern);
      const z = bmm(drop(pattern), v).reshape([N, hd]) as tf.Tensor2D;
      const o = fb ? linearFrozen(z, fb.o[h]) : linearTrainable(z, tf.slice(blk.cProjW, [h * hd, 0], [hd, d]));
      if (rate > 0) attnOuts.push(o);
      else add(`attn_output-${l}-${h}`, o);
    }
    attention?.push(headsOut);
    // A broadcasting multiply, not broadcastTo: tfjs computes tile's gradient by slicing every repetition.
    const bias = tf.mul(ones, blk.cProjB) as tf.Tensor2D;
    if (rate > 0) {
      // HF drops out c_proj's whole output (heads + bias) at once; contributions are not separable then.
      add(`attn_output-${l}`, drop(tf.add(tf.addN(attnOuts), bias) as tf.Tensor2D));
    } else {
      add(`attn_bias-${l}`, bias);
    }
    const x2 = layerNorm(resid as tf.Tensor2D, blk.ln2g, blk.ln2b, config.lnEps);
    const hidden = geluNew(fb ? linearFrozen(x2, fb.fc) : linearTrainable(x2, blk.fcW, blk.fcB));
    const out = fb ? linearFrozen(hidden, fb.proj) : linearTrainable(hidden, blk.projW, blk.projB);
    add(`mlp-${l}`, drop(out));
  });

  const final = resid as tf.Tensor2D;
  const xf = layerNorm(final, params.lnFg, params.lnFb, config.lnEps);
  const logits2d = model.frozen ? linearFrozen(xf, model.frozen.unembed) : linearTrainable(xf, tf.transpose(params.wte));
  const result: ForwardOutput = { logits: logits2d.reshape([B, T, config.vocabSize]) as tf.Tensor3D };
  if (contributions) result.contributions = contributions;
  if (attention) result.attention = attention;
  if (rec.residual) result.residual = final.reshape([B, T, d]) as tf.Tensor3D;
  return result;
}

function gatherRows(table: Float32Array, d: number, rows: Int32Array): tf.Tensor2D {
  const out = new Float32Array(rows.length * d);
  for (let i = 0; i < rows.length; i++) out.set(table.subarray(rows[i] * d, rows[i] * d + d), i * d);
  return tf.tensor2d(out, [rows.length, d]);
}

function causalMask(T: number): tf.Tensor2D {
  const m = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) m[i * T + j] = -1e9;
  return tf.tensor2d(m, [T, T]);
}

/** LayerNorm over the last axis with biased variance, as torch computes it. */
export function layerNorm(x: tf.Tensor2D, g: tf.Tensor1D, b: tf.Tensor1D, eps: number): tf.Tensor2D {
  const mean = tf.mean(x, -1, true);
  const xc = tf.sub(x, mean);
  const variance = tf.mean(tf.square(xc), -1, true);
  return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(variance, eps))), g), b);
}

const GELU_C = 2 * Math.sqrt(2 / Math.PI);

/** gelu_new(x) = 0.5x(1 + tanh(c(x + 0.044715x^3))) = x * sigmoid(2c(x + 0.044715x^3)). */
export function geluNew<T extends tf.Tensor>(x: T): T {
  // x * (1 + 0.044715 x^2) instead of pow(x, 3): pow is a slow kernel on wasm.
  const inner = tf.mul(x, tf.add(tf.mul(tf.square(x), 0.044715 * GELU_C), GELU_C));
  return tf.mul(x, tf.sigmoid(inner));
}

type GradFn<T extends tf.Tensor> = (
  inputs: tf.Tensor[],
  save: tf.GradSaveFunc,
) => { value: T; gradFunc: (dy: T, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[] };

/** tf.customGrad with the inputs as an array (its own signature is variadic and loosely typed). */
function withGrad<T extends tf.Tensor>(fn: GradFn<T>): (...inputs: tf.Tensor[]) => T {
  const f = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) =>
    fn(args.slice(0, -1) as tf.Tensor[], args[args.length - 1] as tf.GradSaveFunc)) as CustomGradientFunc<T>);
  return (...inputs: tf.Tensor[]) => f(...inputs) as T;
}

type CustomGradientFunc<T extends tf.Tensor> = Parameters<typeof tf.customGrad<T>>[0];

/** x W + b for frozen W: the input gradient uses the pre-transposed weight (fast matmul path both ways). */
function linearFrozen(x: tf.Tensor2D, lin: Linear): tf.Tensor2D {
  return withGrad<tf.Tensor2D>(([xi]) => ({
    value: tf.fused.matMul({ a: xi as tf.Tensor2D, b: lin.w, bias: lin.b }) as tf.Tensor2D,
    gradFunc: (dy) => tf.matMul(dy, lin.wT),
  }))(x);
}

/** x W + b with gradients for x, W and b, each a plain (non-transposed) matmul of explicit transposes. */
const affineTrainable = withGrad<tf.Tensor2D>(([x, w, b], save) => {
  save([x, w]);
  return {
    value: tf.fused.matMul({ a: x as tf.Tensor2D, b: w as tf.Tensor2D, bias: b }) as tf.Tensor2D,
    gradFunc: (dy, [xs, ws]) => [
      tf.matMul(dy, tf.transpose(ws as tf.Tensor2D)),
      tf.matMul(tf.transpose(xs as tf.Tensor2D), dy),
      tf.sum(dy, 0),
    ],
  };
});

const matMulGrad = withGrad<tf.Tensor2D>(([x, w], save) => {
  save([x, w]);
  return {
    value: tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D),
    gradFunc: (dy, [xs, ws]) => [tf.matMul(dy, tf.transpose(ws as tf.Tensor2D)), tf.matMul(tf.transpose(xs as tf.Tensor2D), dy)],
  };
});

function linearTrainable(x: tf.Tensor2D, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor2D {
  return b ? affineTrainable(x, w, b) : matMulGrad(x, w);
}

function matMulTrainable(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  return matMulGrad(x, w);
}

/** Batched product a[B, M, K] x b[B, K, N] with a gradient that is again made of bmm's. */
export const bmm: (a: tf.Tensor3D, b: tf.Tensor3D) => tf.Tensor3D = withGrad<tf.Tensor3D>(([a, b], save) => {
  save([a, b]);
  return {
    value: bmmRaw(a as tf.Tensor3D, b as tf.Tensor3D),
    gradFunc: (dy, [as, bs]) => [
      bmmRaw(dy, tf.transpose(bs, [0, 2, 1]) as tf.Tensor3D),
      bmmRaw(tf.transpose(as, [0, 2, 1]) as tf.Tensor3D, dy),
    ],
  };
});

/** Batched product a[B, M, K] x b[B, N, K]^T (attention scores), without materialising b's transpose first. */
export const bmmNT: (a: tf.Tensor3D, b: tf.Tensor3D) => tf.Tensor3D = withGrad<tf.Tensor3D>(([a, b], save) => {
  save([a, b]);
  return {
    value: bmmRawNT(a as tf.Tensor3D, b as tf.Tensor3D),
    gradFunc: (dy, [as, bs]) => [bmmRaw(dy, bs as tf.Tensor3D), bmmRaw(tf.transpose(dy, [0, 2, 1]) as tf.Tensor3D, as as tf.Tensor3D)],
  };
});

/** Which kernel runs batched products; 'depthwise' is the fast one on wasm, 'matmul' the straightforward one. */
export let bmmKernel: 'depthwise' | 'matmul' = 'depthwise';
export function setBmmKernel(k: 'depthwise' | 'matmul'): void {
  bmmKernel = k;
}

function bmmRaw(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  if (bmmKernel === 'matmul' || tf.getBackend() !== 'wasm') return tf.matMul(a, b);
  // filter[k, b, n] = b[b, k, n]
  return depthwiseBmm(a, tf.transpose(b, [1, 0, 2]) as tf.Tensor3D);
}

function bmmRawNT(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  if (bmmKernel === 'matmul' || tf.getBackend() !== 'wasm') return tf.matMul(a, b, false, true);
  // filter[k, b, n] = b[b, n, k]
  return depthwiseBmm(a, tf.transpose(b, [2, 0, 1]) as tf.Tensor3D);
}

/**
 * c[b,m,n] = sum_k a[b,m,k] f[k,b,n] as a depthwise convolution with the batch as channels: input [1, M, K, B]
 * (an M x K image per channel), filter [1, K, B, N] (one K-wide filter per channel, N outputs each), valid padding
 * -> output [1, M, 1, B*N].
 */
function depthwiseBmm(a: tf.Tensor3D, f: tf.Tensor3D): tf.Tensor3D {
  const [B, M, K] = a.shape;
  const N = f.shape[2];
  const input = tf.transpose(a, [1, 2, 0]).reshape([1, M, K, B]) as tf.Tensor4D;
  const out = tf.depthwiseConv2d(input, f.reshape([1, K, B, N]) as tf.Tensor4D, 1, 'valid');
  return tf.transpose(out.reshape([M, B, N]), [1, 0, 2]) as tf.Tensor3D;
}

// ---------------------------------------------------------------------------------------------------------------
// Convenience

const cache = new WeakMap<LoadedModel, TfModel>();

/** The frozen TfModel of a loaded model, created once and cached. */
export async function tfModelOf(model: LoadedModel): Promise<TfModel> {
  await initBackend();
  let tm = cache.get(model);
  if (!tm || tm.params.wte.isDisposed) {
    tm = createTfModel(model.config, model.weights);
    cache.set(model, tm);
  }
  return tm;
}

/** Frees the cached TfModel of a loaded model. */
export function releaseTfModel(model: LoadedModel): void {
  cache.get(model)?.dispose();
  cache.delete(model);
}

/** Logits of each sequence (positions from 0): one row-major n x V Float32Array per sequence. */
export async function modelLogits(
  model: LoadedModel,
  batch: number[][],
  options: { offset?: number; maxTokensPerChunk?: number; signal?: AbortSignal } = {},
): Promise<Float32Array[]> {
  const tm = await tfModelOf(model);
  const V = model.config.vocabSize;
  const out: Float32Array[] = new Array(batch.length);
  // Similar lengths together keeps padding small; chunks bound memory.
  const order = batch.map((_, i) => i).sort((x, y) => batch[x].length - batch[y].length);
  const budget = options.maxTokensPerChunk ?? 8192;
  let i = 0;
  while (i < order.length) {
    options.signal?.throwIfAborted();
    let j = i;
    while (j < order.length && (j - i + 1) * Math.max(batch[order[j]].length, 1) <= budget) j++;
    if (j === i) j = i + 1;
    const idx = order.slice(i, j);
    const empty = idx.filter((k) => batch[k].length === 0);
    for (const k of empty) out[k] = new Float32Array(0);
    const live = idx.filter((k) => batch[k].length > 0);
    if (live.length > 0) {
      const b = makeBatch(model.config, live.map((k) => batch[k]), { offset: options.offset ?? 0 });
      const logits = tf.tidy(() => forward(tm, b).logits);
      const data = (await logits.data()) as Float32Array;
      logits.dispose();
      live.forEach((k, r) => {
        const n = b.lengths[r];
        out[k] = data.slice(r * b.T * V, (r * b.T + n) * V);
      });
    }
    i = j;
  }
  return out;
}
