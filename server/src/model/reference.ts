// Independent float64 GPT-2 forward pass in plain JS, written straight from the definition (no tfjs), used to
// check the tfjs forward pass. One sequence at a time; O(T^2 d + T d^2) per layer; slow but exact.
import { UserError } from '../util/errors';
import type { Gpt2Config, Gpt2Weights } from './types';

/** Logits (row-major T x V, float64) of one sequence with positions offset, offset+1, .... */
export function referenceLogits(config: Gpt2Config, weights: Gpt2Weights, ids: readonly number[], offset = 0): Float64Array {
  const T = ids.length;
  const d = config.nEmbd;
  const H = config.nHead;
  const hd = d / H;
  const V = config.vocabSize;
  if (offset + T > config.nPositions) throw new UserError(`${T} tokens at offset ${offset} exceed the model's ${config.nPositions} positions`);
  const h = new Float64Array(T * d);
  for (let t = 0; t < T; t++) {
    const id = ids[t];
    if (!Number.isInteger(id) || id < 0 || id >= V) throw new UserError(`token id ${id} outside the vocabulary 0..${V - 1}`);
    for (let i = 0; i < d; i++) h[t * d + i] = weights.wte.data[id * d + i] + weights.wpe.data[(offset + t) * d + i];
  }
  for (const blk of weights.blocks) {
    // Attention
    const x = layerNorm64(h, T, d, blk.ln1.weight.data, blk.ln1.bias.data, config.lnEps);
    const qkv = affine(x, T, d, blk.attn.cAttnW.data, blk.attn.cAttnB.data, 3 * d);
    const z = new Float64Array(T * d);
    const scores = new Float64Array(T);
    const scale = 1 / Math.sqrt(hd);
    for (let head = 0; head < H; head++) {
      const qo = head * hd;
      const ko = d + head * hd;
      const vo = 2 * d + head * hd;
      for (let t = 0; t < T; t++) {
        let max = -Infinity;
        for (let s = 0; s <= t; s++) {
          let acc = 0;
          for (let e = 0; e < hd; e++) acc += qkv[t * 3 * d + qo + e] * qkv[s * 3 * d + ko + e];
          scores[s] = acc * scale;
          if (scores[s] > max) max = scores[s];
        }
        let sum = 0;
        for (let s = 0; s <= t; s++) {
          scores[s] = Math.exp(scores[s] - max);
          sum += scores[s];
        }
        for (let s = 0; s <= t; s++) {
          const w = scores[s] / sum;
          for (let e = 0; e < hd; e++) z[t * d + head * hd + e] += w * qkv[s * 3 * d + vo + e];
        }
      }
    }
    const attnOut = affine(z, T, d, blk.attn.cProjW.data, blk.attn.cProjB.data, d);
    for (let i = 0; i < T * d; i++) h[i] += attnOut[i];
    // MLP
    const x2 = layerNorm64(h, T, d, blk.ln2.weight.data, blk.ln2.bias.data, config.lnEps);
    const fc = affine(x2, T, d, blk.mlp.fcW.data, blk.mlp.fcB.data, 4 * d);
    for (let i = 0; i < fc.length; i++) {
      const u = fc[i];
      fc[i] = 0.5 * u * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (u + 0.044715 * u * u * u)));
    }
    const mlpOut = affine(fc, T, 4 * d, blk.mlp.projW.data, blk.mlp.projB.data, d);
    for (let i = 0; i < T * d; i++) h[i] += mlpOut[i];
  }
  const xf = layerNorm64(h, T, d, weights.lnF.weight.data, weights.lnF.bias.data, config.lnEps);
  const logits = new Float64Array(T * V);
  const wte = weights.wte.data;
  for (let t = 0; t < T; t++) {
    for (let v = 0; v < V; v++) {
      let acc = 0;
      for (let i = 0; i < d; i++) acc += xf[t * d + i] * wte[v * d + i];
      logits[t * V + v] = acc;
    }
  }
  return logits;
}

function layerNorm64(x: Float64Array, T: number, d: number, g: Float32Array, b: Float32Array, eps: number): Float64Array {
  const out = new Float64Array(T * d);
  for (let t = 0; t < T; t++) {
    let mean = 0;
    for (let i = 0; i < d; i++) mean += x[t * d + i];
    mean /= d;
    let v = 0;
    for (let i = 0; i < d; i++) v += (x[t * d + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / d + eps);
    for (let i = 0; i < d; i++) out[t * d + i] = (x[t * d + i] - mean) * inv * g[i] + b[i];
  }
  return out;
}

/** x [T, n] . W [n, m] + b (HF Conv1D layout). */
function affine(x: Float64Array, T: number, n: number, W: Float32Array, b: Float32Array, m: number): Float64Array {
  const out = new Float64Array(T * m);
  for (let t = 0; t < T; t++) {
    const row = out.subarray(t * m, t * m + m);
    for (let j = 0; j < m; j++) row[j] = b[j];
    for (let i = 0; i < n; i++) {
      const xi = x[t * n + i];
      if (xi === 0) continue;
      const wr = i * m;
      for (let j = 0; j < m; j++) row[j] += xi * W[wr + j];
    }
  }
  return out;
}
