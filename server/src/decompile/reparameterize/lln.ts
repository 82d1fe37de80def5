// LLN-A (method-pruning.md 1.3, d-rasp.md 1.1): every consumer applies its own *linear* layer norm
//   LNlin_c(x) = (x - mean(x)) * gamma / sqrt(var_c + eps) + beta
// with one variance scalar per consumer. Centring and gamma are folded into the consumer's weight matrix
// (W~ = C diag(gamma) W, C = I - 11^T/d), so every consumer is  scale_c * (u W~) + const  with
// scale_c = 1/sqrt(var_c + eps), which is linear in its input u and splits over the paths u is made of.
import type { Gpt2Config, Gpt2Weights } from '../../model/types';

export interface HeadMaps {
  /** d x dh folded query/key/value maps and dh x d output map. */
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  o: Float32Array;
  /** beta W + b for query, key and value (dh each). */
  cQ: Float32Array;
  cK: Float32Array;
  cV: Float32Array;
}

export interface LayerMaps {
  heads: HeadMaps[];
  /** c_proj bias (not a vertex; folded into later consumers' constants). */
  attnBias: Float32Array;
  /** d x 4d folded c_fc, beta2 W_fc + b_fc, and the original c_proj. */
  fc: Float32Array;
  fcB: Float32Array;
  proj: Float32Array;
  projB: Float32Array;
  /** Raw ln_2 gamma and c_fc, for opaque MLP lines that apply layer norm themselves. */
  ln2Gamma: Float32Array;
  fcRaw: Float32Array;
}

export interface FoldedModel {
  d: number;
  dh: number;
  nHead: number;
  nLayer: number;
  V: number;
  P: number;
  eps: number;
  wte: Float32Array;
  wpe: Float32Array;
  layers: LayerMaps[];
  /** d x V folded unembedding C diag(gamma_f) wte^T, and beta_f wte^T. */
  unembed: Float32Array;
  unembedB: Float32Array;
}

/** rows x cols slice of the columns [c0, c0+n) of a row-major matrix with `cols` columns. */
function columns(data: Float32Array, rows: number, cols: number, c0: number, n: number): Float32Array {
  const out = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) for (let c = 0; c < n; c++) out[r * n + c] = data[r * cols + c0 + c];
  return out;
}

/** C diag(gamma) W for a d x n matrix W: scale row i by gamma_i, then subtract each column's mean. */
function foldLn(w: Float32Array, d: number, n: number, gamma: Float32Array): Float32Array {
  const out = new Float32Array(d * n);
  for (let c = 0; c < n; c++) {
    let mean = 0;
    for (let r = 0; r < d; r++) mean += gamma[r] * w[r * n + c];
    mean /= d;
    for (let r = 0; r < d; r++) out[r * n + c] = gamma[r] * w[r * n + c] - mean;
  }
  return out;
}

/** x (1 x d) times W (d x n) plus b. */
export function vecMat(x: ArrayLike<number>, w: ArrayLike<number>, d: number, n: number, b?: ArrayLike<number>): Float32Array {
  const out = new Float32Array(n);
  for (let c = 0; c < n; c++) out[c] = b ? b[c] : 0;
  for (let r = 0; r < d; r++) {
    const xr = x[r];
    if (xr === 0) continue;
    for (let c = 0; c < n; c++) out[c] += xr * w[r * n + c];
  }
  return out;
}

export function foldModel(config: Gpt2Config, weights: Gpt2Weights): FoldedModel {
  const d = config.nEmbd;
  const nHead = config.nHead;
  const dh = d / nHead;
  const V = config.vocabSize;
  const layers: LayerMaps[] = weights.blocks.map((b) => {
    const g1 = b.ln1.weight.data;
    const beta1 = b.ln1.bias.data;
    const cAttn = b.attn.cAttnW.data;
    const cAttnB = b.attn.cAttnB.data;
    const heads: HeadMaps[] = [];
    for (let h = 0; h < nHead; h++) {
      const wq = columns(cAttn, d, 3 * d, h * dh, dh);
      const wk = columns(cAttn, d, 3 * d, d + h * dh, dh);
      const wv = columns(cAttn, d, 3 * d, 2 * d + h * dh, dh);
      const bias = (off: number): Float32Array => cAttnB.slice(off + h * dh, off + (h + 1) * dh);
      heads.push({
        q: foldLn(wq, d, dh, g1),
        k: foldLn(wk, d, dh, g1),
        v: foldLn(wv, d, dh, g1),
        o: b.attn.cProjW.data.slice(h * dh * d, (h + 1) * dh * d),
        cQ: vecMat(beta1, wq, d, dh, bias(0)),
        cK: vecMat(beta1, wk, d, dh, bias(d)),
        cV: vecMat(beta1, wv, d, dh, bias(2 * d)),
      });
    }
    return {
      heads,
      attnBias: b.attn.cProjB.data,
      fc: foldLn(b.mlp.fcW.data, d, 4 * d, b.ln2.weight.data),
      fcB: vecMat(b.ln2.bias.data, b.mlp.fcW.data, d, 4 * d, b.mlp.fcB.data),
      proj: b.mlp.projW.data,
      projB: b.mlp.projB.data,
      ln2Gamma: b.ln2.weight.data,
      fcRaw: b.mlp.fcW.data,
    };
  });
  // wte^T (d x V)
  const wteT = new Float32Array(d * V);
  for (let t = 0; t < V; t++) for (let i = 0; i < d; i++) wteT[i * V + t] = weights.wte.data[t * d + i];
  return {
    d,
    dh,
    nHead,
    nLayer: config.nLayer,
    V,
    P: config.nPositions,
    eps: config.lnEps,
    wte: weights.wte.data,
    wpe: weights.wpe.data,
    layers,
    unembed: foldLn(wteT, d, V, weights.lnF.weight.data),
    unembedB: vecMat(weights.lnF.bias.data, wteT, d, V),
  };
}

/**
 * Plain float64 forward pass of the original model on one sequence (positions 0..n-1), returning n x V logits.
 * `onLn(site, t, variance)` sees every layer norm's input variance (sites: ln_1 and ln_2 of each layer, ln_f);
 * `fixedVariance[site]`, when given, replaces the per-token variance (LLN-A with one variance per site).
 */
export function originalForward(
  config: Gpt2Config,
  weights: Gpt2Weights,
  seq: readonly number[],
  onLn?: (site: number, t: number, variance: number) => void,
  fixedVariance?: readonly number[],
): Float64Array {
  const d = config.nEmbd;
  const nHead = config.nHead;
  const dh = d / nHead;
  const V = config.vocabSize;
  const sites = 2 * config.nLayer + 1;
  const ln = (x: Float64Array, g: Float32Array, b: Float32Array, site: number, t: number): Float64Array => {
    let mean = 0;
    for (let i = 0; i < d; i++) mean += x[i];
    mean /= d;
    let v = 0;
    for (let i = 0; i < d; i++) v += (x[i] - mean) ** 2;
    v /= d;
    onLn?.(site, t, v);
    const s = 1 / Math.sqrt((fixedVariance ? fixedVariance[site] : v) + config.lnEps);
    const out = new Float64Array(d);
    for (let i = 0; i < d; i++) out[i] = (x[i] - mean) * s * g[i] + b[i];
    return out;
  };
  const matVec = (x: Float64Array, w: Float32Array, n: number, bias: Float32Array): Float64Array => {
    const out = Float64Array.from(bias);
    for (let r = 0; r < x.length; r++) {
      const xr = x[r];
      for (let c = 0; c < n; c++) out[c] += xr * w[r * n + c];
    }
    return out;
  };
  const T = seq.length;
  const resid: Float64Array[] = seq.map((tok, t) => {
    const r = new Float64Array(d);
    for (let i = 0; i < d; i++) r[i] = weights.wte.data[tok * d + i] + weights.wpe.data[t * d + i];
    return r;
  });
  for (let l = 0; l < config.nLayer; l++) {
    const b = weights.blocks[l];
    const qkv = resid.map((r, t) => matVec(ln(r, b.ln1.weight.data, b.ln1.bias.data, 2 * l, t), b.attn.cAttnW.data, 3 * d, b.attn.cAttnB.data));
    const z = resid.map(() => new Float64Array(d));
    for (let h = 0; h < nHead; h++) {
      for (let i = 0; i < T; i++) {
        const scores = new Float64Array(i + 1);
        let max = -Infinity;
        for (let j = 0; j <= i; j++) {
          let s = 0;
          for (let c = 0; c < dh; c++) s += qkv[i][h * dh + c] * qkv[j][d + h * dh + c];
          scores[j] = s / Math.sqrt(dh);
          if (scores[j] > max) max = scores[j];
        }
        let tot = 0;
        for (let j = 0; j <= i; j++) tot += scores[j] = Math.exp(scores[j] - max);
        for (let j = 0; j <= i; j++) {
          const w = scores[j] / tot;
          for (let c = 0; c < dh; c++) z[i][h * dh + c] += w * qkv[j][2 * d + h * dh + c];
        }
      }
    }
    for (let t = 0; t < T; t++) {
      const a = matVec(z[t], b.attn.cProjW.data, d, b.attn.cProjB.data);
      for (let i = 0; i < d; i++) resid[t][i] += a[i];
      const h1 = matVec(ln(resid[t], b.ln2.weight.data, b.ln2.bias.data, 2 * l + 1, t), b.mlp.fcW.data, 4 * d, b.mlp.fcB.data);
      for (let i = 0; i < h1.length; i++) h1[i] = geluNew(h1[i]);
      const m = matVec(h1, b.mlp.projW.data, d, b.mlp.projB.data);
      for (let i = 0; i < d; i++) resid[t][i] += m[i];
    }
  }
  const logits = new Float64Array(T * V);
  for (let t = 0; t < T; t++) {
    const x = ln(resid[t], weights.lnF.weight.data, weights.lnF.bias.data, sites - 1, t);
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let i = 0; i < d; i++) s += x[i] * weights.wte.data[v * d + i];
      logits[t * V + v] = s;
    }
  }
  return logits;
}

/**
 * Mean per-token variance of each layer norm's input in the *original* model (ln_1 and ln_2 of every layer,
 * then ln_f), over the given sequences, skipping PAD and EOS positions. Uses the biased estimator, as layer
 * norm itself does ([quirk] the original code used the unbiased n-1 estimator here).
 */
export function meanLnVariances(config: Gpt2Config, weights: Gpt2Weights, seqs: number[][], skip: Set<number>): number[] {
  const sites = 2 * config.nLayer + 1;
  const sum = new Float64Array(sites);
  const count = new Float64Array(sites);
  for (const seq of seqs) {
    originalForward(config, weights, seq, (site, t, v) => {
      if (skip.has(seq[t])) return;
      sum[site] += v;
      count[site] += 1;
    });
  }
  return Array.from(sum, (s, i) => s / Math.max(1, count[i]));
}

export function geluNew(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}
