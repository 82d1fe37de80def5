// The model's own attention-score term behind a select line: the counterpart a select's scores are compared with.
//
// A select citing `layer L head H q=P k=Q` stands for the part of head L.H's score that query path P and key path Q
// contribute. In the model that part is exact once LayerNorm is written per position: LN(x_i) = g * c(x_i) / s_i + b
// with c() the centring and s_i the position's own standard deviation, so LN(x_i) = sum over paths p of
// g * c(C_p[i]) / s_i (+ the constant b), and q_i . k_j splits into one term per (query path, key path) pair. A path's
// residual contribution C_p comes from the forward pass (`wte`, `wpe`, `mlp-L`) or, for `attn_output-L-H-rest`, from
// head L.H's attention applied to what path `rest` writes into its values. A key-only select (no query path) stands
// for everything on the query side the program does not name explicitly (query constant, pruned query paths):
// its counterpart uses the model's whole query minus the query paths the program's selects of that head name.
import type { LoadedModel } from '../model/types';
import type { Program, SelectStatement } from '../program/types';

/** Everything one input's forward pass recorded that the terms need (row-major, batch entry b of T positions). */
export interface RecordedItem {
  b: number;
  T: number;
  n: number;
  tokens: readonly number[];
  /** Residual contributions by name (`wte`, `wpe`, `attn_output-L-H`, `attn_bias-L`, `mlp-L`): B x T x d. */
  contributions: Map<string, Float32Array>;
  /** attention[L][H]: B x T x T. */
  attention: Float32Array[][];
}

export class PathTerms {
  private readonly d: number;
  private readonly dh: number;
  private readonly paths = new Map<string, Float64Array | null>();
  private readonly sigmas = new Map<number, Float64Array>();
  private readonly projections = new Map<string, Float64Array | null>();

  constructor(
    private readonly model: LoadedModel,
    private readonly item: RecordedItem,
  ) {
    this.d = model.config.nEmbd;
    this.dh = model.config.nEmbd / model.config.nHead;
  }

  /** One recorded contribution for this input: n x d. */
  private recorded(name: string): Float64Array | undefined {
    const all = this.item.contributions.get(name);
    if (!all) return undefined;
    const { b, T, n } = this.item;
    const d = this.d;
    return Float64Array.from(all.subarray(b * T * d, (b * T + n) * d));
  }

  /** The residual stream entering block `layer`: n x d. */
  private residual(layer: number): Float64Array {
    const { n } = this.item;
    const out = new Float64Array(n * this.d);
    const names = ['wte', 'wpe'];
    for (let l = 0; l < layer; l++) {
      for (let h = 0; h < this.model.config.nHead; h++) names.push(`attn_output-${l}-${h}`);
      names.push(`attn_bias-${l}`, `mlp-${l}`);
    }
    for (const name of names) {
      const c = this.recorded(name);
      if (c) for (let x = 0; x < out.length; x++) out[x] += c[x];
    }
    return out;
  }

  /** Per position, sqrt(var + eps) of the residual entering block `layer` (what its ln_1 divides by). */
  private sigma(layer: number): Float64Array {
    let s = this.sigmas.get(layer);
    if (!s) {
      const x = this.residual(layer);
      const { n } = this.item;
      const d = this.d;
      s = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        let mean = 0;
        for (let c = 0; c < d; c++) mean += x[i * d + c];
        mean /= d;
        let v = 0;
        for (let c = 0; c < d; c++) v += (x[i * d + c] - mean) ** 2;
        s[i] = Math.sqrt(v / d + this.model.config.lnEps);
      }
      this.sigmas.set(layer, s);
    }
    return s;
  }

  /** g * c(C[i]) / s_i under block `layer`'s ln_1: a path's share of the normalised input (n x d). */
  private normalised(layer: number, C: Float64Array): Float64Array {
    const { n } = this.item;
    const d = this.d;
    const g = this.model.weights.blocks[layer].ln1.weight.data;
    const s = this.sigma(layer);
    const out = new Float64Array(n * d);
    for (let i = 0; i < n; i++) {
      let mean = 0;
      for (let c = 0; c < d; c++) mean += C[i * d + c];
      mean /= d;
      for (let c = 0; c < d; c++) out[i * d + c] = (g[c] * (C[i * d + c] - mean)) / s[i];
    }
    return out;
  }

  /** Rows of X (n x d) times the part-th (0 q, 1 k, 2 v) d x dh block of head `head` in c_attn. */
  private headProjection(layer: number, head: number, part: number, X: Float64Array): Float64Array {
    const { n } = this.item;
    const { d, dh } = this;
    const W = this.model.weights.blocks[layer].attn.cAttnW.data;
    const c0 = part * d + head * dh;
    const out = new Float64Array(n * dh);
    for (let i = 0; i < n; i++) {
      for (let r = 0; r < d; r++) {
        const x = X[i * d + r];
        if (x === 0) continue;
        for (let c = 0; c < dh; c++) out[i * dh + c] += x * W[r * 3 * d + c0 + c];
      }
    }
    return out;
  }

  /** A residual path's contribution (n x d), or undefined for a path this model does not have. */
  contribution(path: string): Float64Array | undefined {
    const hit = this.paths.get(path);
    if (hit !== undefined) return hit ?? undefined;
    let out: Float64Array | undefined;
    const { nLayer, nHead } = this.model.config;
    const m = /^attn_output-(\d+)-(\d+)-(.+)$/.exec(path);
    if (path === 'wte' || path === 'wpe' || /^mlp-\d+$/.test(path)) {
      out = this.recorded(path);
    } else if (m) {
      const [layer, head] = [Number(m[1]), Number(m[2])];
      const inner = layer < nLayer && head < nHead ? this.contribution(m[3]) : undefined;
      if (inner) out = this.headOutput(layer, head, inner);
    }
    this.paths.set(path, out ?? null);
    return out;
  }

  /** What head layer.head writes into the residual stream from one path's values (no biases): n x d. */
  private headOutput(layer: number, head: number, inner: Float64Array): Float64Array {
    const { n, b, T } = this.item;
    const { d, dh } = this;
    const v = this.headProjection(layer, head, 2, this.normalised(layer, inner));
    const A = this.item.attention[layer][head];
    const z = new Float64Array(n * dh);
    for (let i = 0; i < n; i++) {
      const row = (b * T + i) * T;
      for (let j = 0; j <= i; j++) {
        const a = A[row + j];
        if (a === 0) continue;
        for (let c = 0; c < dh; c++) z[i * dh + c] += a * v[j * dh + c];
      }
    }
    const O = this.model.weights.blocks[layer].attn.cProjW.data;
    const out = new Float64Array(n * d);
    for (let i = 0; i < n; i++) {
      for (let r = 0; r < dh; r++) {
        const x = z[i * dh + r];
        if (x === 0) continue;
        for (let c = 0; c < d; c++) out[i * d + c] += x * O[(head * dh + r) * d + c];
      }
    }
    return out;
  }

  /** A path's query (part 0) or key (part 1) vectors in a head, without biases: n x dh. */
  private pathProjection(layer: number, head: number, part: 0 | 1, path: string): Float64Array | undefined {
    const key = `${layer}/${head}/${part}/${path}`;
    const hit = this.projections.get(key);
    if (hit !== undefined) return hit ?? undefined;
    const C = this.contribution(path);
    const out = C ? this.headProjection(layer, head, part, this.normalised(layer, C)) : undefined;
    this.projections.set(key, out ?? null);
    return out;
  }

  /** The model's whole query of a head, biases included: n x dh. */
  private fullQuery(layer: number, head: number): Float64Array {
    const { n } = this.item;
    const { d, dh } = this;
    const blk = this.model.weights.blocks[layer];
    const X = this.normalised(layer, this.residual(layer));
    for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) X[i * d + c] += blk.ln1.bias.data[c];
    const q = this.headProjection(layer, head, 0, X);
    for (let i = 0; i < n; i++) for (let c = 0; c < dh; c++) q[i * dh + c] += blk.attn.cAttnB.data[head * dh + c];
    return q;
  }

  /**
   * The model's counterpart of a select's scores, already divided by sqrt(d_head) (n x n, keys j <= i filled), or
   * undefined when the select's paths cannot be traced. `queryPaths`: the query paths the program's selects of the
   * same head name (what a key-only select does not stand for).
   */
  selectTerm(s: SelectStatement, queryPaths: readonly string[]): Float64Array | undefined {
    const p = s.provenance;
    if (!p || p.head === null || p.mlp || !p.paths.k) return undefined;
    const { nLayer, nHead } = this.model.config;
    if (p.layer >= nLayer || p.head >= nHead) return undefined;
    const k = this.pathProjection(p.layer, p.head, 1, p.paths.k);
    if (!k) return undefined;
    let q: Float64Array | undefined;
    if (p.paths.q) {
      q = this.pathProjection(p.layer, p.head, 0, p.paths.q);
    } else {
      q = this.fullQuery(p.layer, p.head);
      for (const path of queryPaths) {
        const named = this.pathProjection(p.layer, p.head, 0, path);
        if (!named) return undefined;
        for (let x = 0; x < q.length; x++) q[x] -= named[x];
      }
    }
    if (!q) return undefined;
    const { n } = this.item;
    const dh = this.dh;
    const scale = 1 / Math.sqrt(dh);
    const out = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) {
        let dot = 0;
        for (let c = 0; c < dh; c++) dot += q[i * dh + c] * k[j * dh + c];
        out[i * n + j] = dot * scale;
      }
    }
    return out;
  }
}

/** The query paths the selects of one head name, per "layer/head". */
export function namedQueryPaths(program: Program): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const s of program.statements) {
    const p = s.provenance;
    if (s.kind !== 'select' || !p || p.head === null || !p.paths.q) continue;
    const key = `${p.layer}/${p.head}`;
    const list = out.get(key) ?? [];
    if (!list.includes(p.paths.q)) list.push(p.paths.q);
    out.set(key, list);
  }
  return out;
}
