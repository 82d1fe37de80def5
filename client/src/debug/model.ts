// The model's own activations for the debugger's "Model" scope: every head's real attention pattern and the
// logits of the original GPT-2 (real LayerNorm, biases, MLPs), run once on the debugged input. A float64 forward
// in plain JS keeps the debugger free of tfjs start-up cost; the models it serves are a few layers wide.
// No vscode imports.
import type { Program } from '../../../server/src/program/types';
import type { Gpt2Config, Gpt2Weights, LayerNormWeights, LoadedModel } from '../../../server/src/model/types';
import { UserError } from '../../../server/src/util/errors';

export interface ModelActivations {
  n: number;
  /** Logits over the *program's* vocabulary order, n x V. */
  logits: Float64Array;
  /** The causal attention pattern (n x n) of a head, undefined when the model has no such head. */
  attention(layer: number, head: number): Float64Array | undefined;
  nLayer: number;
  nHead: number;
}

/** Maps program token ids to model ids by token string (a program may list its vocabulary in another order). */
export function vocabMapping(program: Program, model: LoadedModel): number[] {
  const modelVocab = model.card.vocab;
  return program.header.vocab.map((tok) => {
    const id = modelVocab.indexOf(tok);
    if (id < 0) throw new UserError(`token ${JSON.stringify(tok)} of the program is not in the model's vocabulary (${modelVocab.join(' ')})`, model.dir);
    return id;
  });
}

export function traceModel(program: Program, model: LoadedModel, tokens: number[]): ModelActivations {
  const toModel = vocabMapping(program, model);
  if (tokens.length > model.config.nPositions) {
    throw new UserError(`the input has ${tokens.length} tokens but the model takes at most ${model.config.nPositions}`, model.dir);
  }
  const ids = tokens.map((t) => toModel[t]);
  const { logits, patterns } = forward(model.config, model.weights, ids);
  const n = ids.length;
  const vModel = model.config.vocabSize;
  const v = toModel.length;
  const out = new Float64Array(n * v);
  for (let i = 0; i < n; i++) for (let c = 0; c < v; c++) out[i * v + c] = logits[i * vModel + toModel[c]];
  return {
    n,
    logits: out,
    nLayer: model.config.nLayer,
    nHead: model.config.nHead,
    attention: (layer, head) => patterns[layer]?.[head],
  };
}

function layerNorm(x: Float64Array, n: number, d: number, w: LayerNormWeights, eps: number): Float64Array {
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    let mean = 0;
    for (let c = 0; c < d; c++) mean += x[i * d + c];
    mean /= d;
    let variance = 0;
    for (let c = 0; c < d; c++) variance += (x[i * d + c] - mean) ** 2;
    variance /= d;
    const inv = 1 / Math.sqrt(variance + eps);
    for (let c = 0; c < d; c++) out[i * d + c] = (x[i * d + c] - mean) * inv * w.weight.data[c] + w.bias.data[c];
  }
  return out;
}

/** y = x W + b with W in Conv1D layout [in, out]. */
function affine(x: Float64Array, n: number, dIn: number, w: Float32Array, b: Float32Array, dOut: number): Float64Array {
  const y = new Float64Array(n * dOut);
  for (let i = 0; i < n; i++) {
    for (let o = 0; o < dOut; o++) y[i * dOut + o] = b[o];
    for (let k = 0; k < dIn; k++) {
      const xv = x[i * dIn + k];
      if (xv === 0) continue;
      const row = k * dOut;
      for (let o = 0; o < dOut; o++) y[i * dOut + o] += xv * w[row + o];
    }
  }
  return y;
}

const GELU_C = Math.sqrt(2 / Math.PI);

/** GPT-2 forward keeping every head's attention pattern. */
export function forward(config: Gpt2Config, weights: Gpt2Weights, ids: number[]): { logits: Float64Array; patterns: Float64Array[][] } {
  const n = ids.length;
  const d = config.nEmbd;
  const nh = config.nHead;
  const dh = d / nh;
  let x: Float64Array = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < d; c++) x[i * d + c] = weights.wte.data[ids[i] * d + c] + weights.wpe.data[i * d + c];
  }
  const patterns: Float64Array[][] = [];
  for (const block of weights.blocks) {
    const h = layerNorm(x, n, d, block.ln1, config.lnEps);
    const qkv = affine(h, n, d, block.attn.cAttnW.data, block.attn.cAttnB.data, 3 * d);
    const merged = new Float64Array(n * d);
    const layerPatterns: Float64Array[] = [];
    for (let hd = 0; hd < nh; hd++) {
      const pattern = new Float64Array(n * n);
      for (let i = 0; i < n; i++) {
        let m = -Infinity;
        for (let j = 0; j <= i; j++) {
          let s = 0;
          for (let c = 0; c < dh; c++) s += qkv[i * 3 * d + hd * dh + c] * qkv[j * 3 * d + d + hd * dh + c];
          s /= Math.sqrt(dh);
          pattern[i * n + j] = s;
          m = Math.max(m, s);
        }
        let z = 0;
        for (let j = 0; j <= i; j++) {
          pattern[i * n + j] = Math.exp(pattern[i * n + j] - m);
          z += pattern[i * n + j];
        }
        for (let j = 0; j <= i; j++) pattern[i * n + j] /= z;
        for (let j = 0; j <= i; j++) {
          const w = pattern[i * n + j];
          for (let c = 0; c < dh; c++) merged[i * d + hd * dh + c] += w * qkv[j * 3 * d + 2 * d + hd * dh + c];
        }
      }
      layerPatterns.push(pattern);
    }
    patterns.push(layerPatterns);
    const attnOut = affine(merged, n, d, block.attn.cProjW.data, block.attn.cProjB.data, d);
    for (let k = 0; k < x.length; k++) x[k] += attnOut[k];
    const h2 = layerNorm(x, n, d, block.ln2, config.lnEps);
    const hidden = affine(h2, n, d, block.mlp.fcW.data, block.mlp.fcB.data, 4 * d);
    for (let k = 0; k < hidden.length; k++) {
      const v = hidden[k];
      hidden[k] = 0.5 * v * (1 + Math.tanh(GELU_C * (v + 0.044715 * v * v * v)));
    }
    const mlpOut = affine(hidden, n, 4 * d, block.mlp.projW.data, block.mlp.projB.data, d);
    for (let k = 0; k < x.length; k++) x[k] += mlpOut[k];
  }
  x = layerNorm(x, n, d, weights.lnF, config.lnEps);
  const vSize = config.vocabSize;
  const logits = new Float64Array(n * vSize);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < vSize; t++) {
      let s = 0;
      for (let c = 0; c < d; c++) s += x[i * d + c] * weights.wte.data[t * d + c];
      logits[i * vSize + t] = s;
    }
  }
  return { logits, patterns };
}
