// Head-dimension provenance (beyond the paper, issue 5): which of a head's d_head dimensions carry a select or an
// aggregate line, computed from the model's weights and the line's provenance (layer, head, paths).
//
// A pair select of head L.H with query path X and key path Y carries A = σ (E_X Wq~)(E_Y Wk~)ᵀ, a sum over the
// head's dimensions d of rank-1 terms σ (E_X Wq~)[:, d] (E_Y Wk~)[:, d]ᵀ; Wq~ = C diag(γ₁) W_Q (layer norm centring
// and gain folded in), E_X the path's basis-to-residual map read from its name, σ the product of the learned layer
// norm scales (a scalar, fitted against the program's own matrix, which also proves the terms are the right ones).
// A key-only select carries a = Σ_d c_d (E_Y Wk~)[:, d]ᵀ with c the head's constant query; c is fitted to a.
// On the program's inputs, dimension d adds s_d(i, j) = u_d(i) w_d(j) to the scores of query i on key j. Its score
// is its share of the per-query spread of the scores, Σ_i Σ_j≤i (s_d(i, j) - mean_j s_d(i, ·))²: a term that adds
// the same amount to every key of a query cancels in the softmax and carries nothing, however large. The dims that
// matter are the shortest prefix (by share) such that the head's attention, with this select restricted to them
// and every other select of the head intact, keeps all but `tolerance` (10%) of the select's effect: its mean
// total-variation distance per query from the program's attention is at most 0.1x the distance with the select
// removed (or below 0.001, a change nothing downstream can see).
// An aggregate of head L.H with value path V writes x(i) (E_V Wv~) W_O into the residual stream: dimension d writes
// z_d(i) W_O[d, :] with z = x E_V Wv~. Its score is its share of that output's variance, var(z_d) |W_O[d]|² (the
// neuron rule of neurons.ts with head dimensions as the units); the dims are the shortest prefix covering
// `coverage`, checked by freezing the others at their mean (FVU of the head's output).
import { Execution, Plan } from '../../interpreter/index';
import type { LoadedModel } from '../../model/types';
import type { Program, Statement } from '../../program/types';
import { CancelledError } from '../../util/errors';
import { type Dense, fromMatrix, leastSquares } from './linalg';

export interface HeadDimOptions {
  /**
   * A select's kept dims must leave at most this fraction of the select's effect on the head's attention (default
   * 0.1), measured as mean total-variation distance per query; see the file comment.
   */
  tolerance?: number;
  /** ... or change the attention by less than this mean total-variation distance (default 0.001). */
  floor?: number;
  /** Share of an aggregate's output variance its kept dims must cover (default 0.9). */
  coverage?: number;
  /** At most this many dims per line (default: all of d_head). */
  maxDims?: number;
  /**
   * The annotation lists at most this many of a line's kept dims (highest score first, default 16), then `+N` for
   * the rest: a wide head can keep most of its 256 dims. The explanations keep them all.
   */
  annotatedDims?: number;
  /** Largest relative misfit between the program's matrix and the model's per-dim terms (default 1e-3). */
  maxMisfit?: number;
  signal?: AbortSignal;
}

export interface DimRef {
  index: number;
  score: number;
}

/** One select or aggregate line's head dimensions, with the checks behind them. */
export interface HeadDimExplanation {
  line: string;
  kind: 'select' | 'aggregate';
  layer: number;
  head: number;
  /** The kept dims, highest score first (score = share, see the file comment). */
  dims: DimRef[];
  /** Every dim's share, indexed by dim (4 significant digits, for the report). */
  shares: number[];
  /** Select: mean total-variation distance (per query) of the head's attention without this select, vs the program's. */
  effect?: number;
  /** Select: the same with only the kept dims of this select. */
  tv?: number;
  /**
   * Select: fraction of query positions whose most-attended key is unchanged with only the kept dims (a key the
   * program's attention weighs within 0.01 of its favourite counts as unchanged).
   */
  argmaxAgreement?: number;
  /** Aggregate: FVU of the head's output (this value path) when the other dims are frozen at their mean. */
  fvu?: number;
  /** Relative misfit of the model's per-dim terms to the program's matrix (select; 0 = exact). */
  misfit?: number;
  /** Why no dims were attributed. */
  skipped?: string;
}

export interface HeadDimResult {
  /** The program with provenance.dims / dimScores filled on every attributed line. */
  program: Program;
  explanations: HeadDimExplanation[];
}

// ---- the model's head factors and path embeddings ----

/** Folded per-head maps (float64): q, k, v are d x dh (C diag(γ₁) W), o is dh x d. */
interface HeadMaps {
  q: Dense;
  k: Dense;
  v: Dense;
  o: Dense;
}

export class ModelFactors {
  readonly d: number;
  readonly dh: number;
  private readonly heads = new Map<string, HeadMaps>();
  private readonly embeddings = new Map<string, Dense | undefined>();

  constructor(private readonly model: LoadedModel) {
    this.d = model.config.nEmbd;
    this.dh = this.d / model.config.nHead;
  }

  head(layer: number, head: number): HeadMaps | undefined {
    const { d, dh } = this;
    if (layer < 0 || layer >= this.model.config.nLayer || head < 0 || head >= this.model.config.nHead) return undefined;
    const key = `${layer}-${head}`;
    let maps = this.heads.get(key);
    if (!maps) {
      const block = this.model.weights.blocks[layer];
      const gamma = block.ln1.weight.data;
      const w = block.attn.cAttnW.data;
      // C diag(γ) W: the centring and gain of the layer norm, as the decompiler folds them (reparameterize/lln.ts)
      const fold = (offset: number): Dense => {
        const out = new Float64Array(d * dh);
        for (let c = 0; c < dh; c++) {
          let mean = 0;
          for (let r = 0; r < d; r++) mean += gamma[r] * w[r * 3 * d + offset + c];
          mean /= d;
          for (let r = 0; r < d; r++) out[r * dh + c] = gamma[r] * w[r * 3 * d + offset + c] - mean;
        }
        return { rows: d, cols: dh, data: out };
      };
      const o = Float64Array.from(block.attn.cProjW.data.subarray(head * dh * d, (head + 1) * dh * d));
      maps = { q: fold(head * dh), k: fold(d + head * dh), v: fold(2 * d + head * dh), o: { rows: dh, cols: d, data: o } };
      this.heads.set(key, maps);
    }
    return maps;
  }

  /**
   * A path's basis-to-residual map (basis x d), read right to left from its name, up to the layer norm scales
   * (scalars): `wte`, `wpe`, `mlp-L[-...]` (residual basis: the identity), `attn_output-L-H-<inner>` = E_inner Wv~ W_O.
   * Undefined for a name it does not know.
   */
  embedding(path: string): Dense | undefined {
    if (this.embeddings.has(path)) return this.embeddings.get(path);
    const { d } = this;
    let out: Dense | undefined;
    const w = this.model.weights;
    if (path === 'wte') out = { rows: w.wte.shape[0], cols: d, data: Float64Array.from(w.wte.data) };
    else if (path === 'wpe') out = { rows: w.wpe.shape[0], cols: d, data: Float64Array.from(w.wpe.data) };
    else if (/^mlp-\d+(-.+)?$/.test(path)) {
      const data = new Float64Array(d * d);
      for (let i = 0; i < d; i++) data[i * d + i] = 1;
      out = { rows: d, cols: d, data };
    } else {
      const m = /^attn_output-(\d+)-(\d+)-(.+)$/.exec(path);
      const maps = m ? this.head(Number(m[1]), Number(m[2])) : undefined;
      const inner = m && maps ? this.embedding(m[3]) : undefined;
      if (maps && inner) out = times(times(inner, maps.v), maps.o);
    }
    this.embeddings.set(path, out);
    return out;
  }
}

function times(a: Dense, b: Dense): Dense {
  const out = new Float64Array(a.rows * b.cols);
  for (let i = 0; i < a.rows; i++) {
    for (let k = 0; k < a.cols; k++) {
      const v = a.data[i * a.cols + k];
      if (v === 0) continue;
      for (let j = 0; j < b.cols; j++) out[i * b.cols + j] += v * b.data[k * b.cols + j];
    }
  }
  return { rows: a.rows, cols: b.cols, data: out };
}

/** Rows of x (n x rows(f), n rows) times f: per position, the factor values. */
function project(x: Float64Array, n: number, f: Dense): Float64Array {
  const out = new Float64Array(n * f.cols);
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < f.rows; r++) {
      const v = x[i * f.rows + r];
      if (v === 0) continue;
      for (let c = 0; c < f.cols; c++) out[i * f.cols + c] += v * f.data[r * f.cols + c];
    }
  }
  return out;
}

// ---- per-line factorization ----

interface SelectUnit {
  stmt: Statement & { kind: 'select' };
  layer: number;
  head: number;
  /** Query factors (|q| x dh, or 1 x dh for key-only) and key factors (|k| x dh): A ≈ U Wᵀ. */
  U: Dense;
  W: Dense;
  misfit: number;
  aggregate: Statement & { kind: 'aggregate' };
  shares: Float64Array;
}

interface AggregateUnit {
  stmt: Statement & { kind: 'aggregate' };
  layer: number;
  head: number;
  /** |v| x dh: per value entry, the head's value in each dim; and the per-dim output norms² |W_O[d]|². */
  Uv: Dense;
  outNorm2: Float64Array;
  /** Per sequence, z = x Uv (n x dh). */
  z: { n: number; data: Float64Array }[];
}

function frob2(data: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < data.length; i++) s += data[i] * data[i];
  return s;
}

/** Fits the model's per-dim terms to the select's matrix; returns the factors or why not. */
function factorSelect(program: Program, s: Statement & { kind: 'select' }, factors: ModelFactors, maps: HeadMaps): { U: Dense; W: Dense; misfit: number } | string {
  if (s.op.kind !== 'matrix') return 'the op is not the model matrix (no weights to decompose)';
  if (s.specialOp) return 'special rows use another op';
  const m = program.matrices.get(s.op.ref);
  if (!m) return `matrix ${s.op.ref} is missing`;
  const A = fromMatrix(m);
  const norm = Math.sqrt(frob2(A.data));
  if (norm === 0) return 'the op matrix is zero';
  const p = s.provenance!;
  const Ek = p.paths.k !== undefined ? factors.embedding(p.paths.k) : undefined;
  if (!Ek) return `unknown key path ${p.paths.k ?? '(none)'}`;
  if (Ek.rows !== A.cols) return `the key path ${p.paths.k} has ${Ek.rows} entries, the op matrix ${A.cols} columns`;
  const W = times(Ek, maps.k);
  const dh = factors.dh;
  if (s.q !== undefined) {
    const Eq = p.paths.q !== undefined ? factors.embedding(p.paths.q) : undefined;
    if (!Eq) return `unknown query path ${p.paths.q ?? '(none)'}`;
    if (Eq.rows !== A.rows) return `the query path ${p.paths.q} has ${Eq.rows} entries, the op matrix ${A.rows} rows`;
    const Q = times(Eq, maps.q);
    // T = Q Wᵀ; the learned layer norm scales make A = σ T: fit σ, then the misfit says whether these are the terms
    const T = new Float64Array(A.rows * A.cols);
    for (let r = 0; r < A.rows; r++) {
      for (let c = 0; c < A.cols; c++) {
        let v = 0;
        for (let d = 0; d < dh; d++) v += Q.data[r * dh + d] * W.data[c * dh + d];
        T[r * A.cols + c] = v;
      }
    }
    let dot = 0;
    for (let i = 0; i < T.length; i++) dot += T[i] * A.data[i];
    const tt = frob2(T);
    if (tt === 0) return 'the head scores nothing on these paths';
    const sigma = dot / tt;
    let err = 0;
    for (let i = 0; i < T.length; i++) err += (A.data[i] - sigma * T[i]) ** 2;
    const U = { rows: Q.rows, cols: dh, data: Q.data.map((v) => v * sigma) };
    return { U, W, misfit: Math.sqrt(err) / norm };
  }
  // key-only: a = c Wᵀ with the head's constant query c (bias, ablated paths); least squares (minimum norm when the
  // key basis has fewer entries than d_head, where c is not determined by a)
  const c = leastSquares(W, { rows: A.cols, cols: 1, data: Float64Array.from(A.data) });
  let err = 0;
  for (let j = 0; j < A.cols; j++) {
    let v = 0;
    for (let d = 0; d < dh; d++) v += W.data[j * dh + d] * c.data[d];
    err += (A.data[j] - v) ** 2;
  }
  return { U: { rows: 1, cols: dh, data: Float64Array.from(c.data) }, W, misfit: Math.sqrt(err) / norm };
}

function round4(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}

/** 4 significant digits: small shares stay visible in the report. */
function sig4(x: number): number {
  return Number(x.toPrecision(4));
}

/** Order of dims by share, highest first (ties by index). */
function rank(shares: Float64Array): number[] {
  return [...shares.keys()].sort((a, b) => shares[b] - shares[a] || a - b);
}

/**
 * Attributes head dimensions to every select and aggregate of `program` that carries head provenance and the
 * model's matrices (see the file comment). `inputs` are the task sequences the shares and checks are measured on.
 */
export function attributeHeadDims(program: Program, model: LoadedModel, inputs: readonly (readonly number[])[], options: HeadDimOptions = {}): HeadDimResult {
  const tolerance = options.tolerance ?? 0.1;
  const floor = options.floor ?? 1e-3;
  const coverage = options.coverage ?? 0.9;
  const maxMisfit = options.maxMisfit ?? 1e-3;
  const factors = new ModelFactors(model);
  const dh = factors.dh;
  const maxDims = Math.max(1, Math.min(options.maxDims ?? dh, dh));
  const checkCancelled = (): void => {
    if (options.signal?.aborted) throw new CancelledError();
  };
  const explanations: HeadDimExplanation[] = [];
  const plan = new Plan(program);
  const selects: SelectUnit[] = [];
  const aggregates: AggregateUnit[] = [];
  const skip = (s: Statement, kind: 'select' | 'aggregate', layer: number, head: number, why: string): void => {
    explanations.push({ line: s.name, kind, layer, head, dims: [], shares: [], skipped: why });
  };
  if (program.header.dHead !== undefined && program.header.dHead !== dh) {
    // the program was not emitted from this model's heads: nothing here can be decomposed against it
    return { program, explanations };
  }
  for (const s of program.statements) {
    const p = s.provenance;
    if (!p || p.mlp || p.head === null || (s.kind !== 'select' && s.kind !== 'aggregate')) continue;
    const maps = factors.head(p.layer, p.head);
    if (!maps) {
      skip(s, s.kind, p.layer, p.head, `the model has no head ${p.layer}.${p.head}`);
      continue;
    }
    if (s.kind === 'select') {
      const aggregate = program.statements.find((a): a is Statement & { kind: 'aggregate' } => a.kind === 'aggregate' && a.selectors.includes(s.name));
      if (!aggregate) {
        skip(s, 'select', p.layer, p.head, 'no aggregate uses this select');
        continue;
      }
      const f = factorSelect(program, s, factors, maps);
      if (typeof f === 'string') skip(s, 'select', p.layer, p.head, f);
      else if (!(f.misfit <= maxMisfit)) skip(s, 'select', p.layer, p.head, `the model's per-dim terms do not reproduce the op matrix (relative misfit ${f.misfit.toPrecision(3)})`);
      else selects.push({ stmt: s, layer: p.layer, head: p.head, ...f, aggregate, shares: new Float64Array(dh) });
    } else {
      const Ev = p.paths.v !== undefined ? factors.embedding(p.paths.v) : undefined;
      const size = plan.bases.get(s.v)?.size;
      if (!Ev) skip(s, 'aggregate', p.layer, p.head, `unknown value path ${p.paths.v ?? '(none)'}`);
      else if (Ev.rows !== size) skip(s, 'aggregate', p.layer, p.head, `the value path ${p.paths.v} has ${Ev.rows} entries, ${s.v} has ${size ?? '?'}`);
      else {
        const outNorm2 = new Float64Array(dh);
        for (let d = 0; d < dh; d++) outNorm2[d] = frob2(maps.o.data.subarray(d * factors.d, (d + 1) * factors.d));
        aggregates.push({ stmt: s, layer: p.layer, head: p.head, Uv: times(Ev, maps.v), outNorm2, z: [] });
      }
    }
  }
  if (selects.length === 0 && aggregates.length === 0) return { program, explanations };

  const needed = new Set<string>([...selects.map((u) => u.aggregate.name), ...aggregates.map((u) => u.stmt.name)]);
  let last = -1;
  program.statements.forEach((s, i) => {
    if (needed.has(s.name)) last = i;
  });
  const run = (ids: readonly number[]): Execution => {
    const ex = new Execution(program, [...ids], { plan });
    while (ex.index <= last) ex.step();
    return ex;
  };
  const scale = program.header.dHead !== undefined ? 1 / Math.sqrt(program.header.dHead) : 1;
  const factorValues = (ex: Execution, u: SelectUnit): { a: Float64Array; b: Float64Array } => {
    const n = ex.n;
    const k = ex.value(u.stmt.k)!;
    const b = project(k.data, n, u.W);
    let a: Float64Array;
    if (u.stmt.q !== undefined) a = project(ex.value(u.stmt.q)!.data, n, u.U);
    else {
      a = new Float64Array(n * dh);
      for (let i = 0; i < n; i++) a.set(u.U.data, i * dh);
    }
    return { a, b };
  };

  // pass 1: shares (per-query spread of each dim's scores; each aggregate dim's output values)
  for (const ids of inputs) {
    checkCancelled();
    const ex = run(ids);
    const n = ex.n;
    for (const u of selects) {
      const { a, b } = factorValues(ex, u);
      for (let d = 0; d < dh; d++) {
        let sum = 0;
        let sq = 0;
        for (let i = 0; i < n; i++) {
          const bj = b[i * dh + d];
          sum += bj;
          sq += bj * bj;
          const spread = sq - (sum * sum) / (i + 1);
          u.shares[d] += a[i * dh + d] ** 2 * Math.max(spread, 0);
        }
      }
    }
    for (const u of aggregates) u.z.push({ n, data: project(ex.value(u.stmt.name)!.data, n, u.Uv) });
  }

  // pass 2 (selects): the head's attention with this select restricted to each prefix of its ranking; prefix 0 (the
  // select removed) measures the select's own effect on the attention
  const orders = selects.map((u) => rank(u.shares).slice(0, maxDims));
  const tv = selects.map(() => new Float64Array(maxDims + 1));
  const agree = selects.map(() => new Float64Array(maxDims + 1));
  let queries = 0;
  if (selects.length > 0) {
    for (const ids of inputs) {
      checkCancelled();
      const ex = run(ids);
      const n = ex.n;
      queries += Math.max(0, n - 1);
      const z = new Float64Array(n);
      const base = new Float64Array(n);
      selects.forEach((u, si) => {
        const { a, b } = factorValues(ex, u);
        // b by dim (dh x n): each prefix adds one dim's column over the keys, read contiguously
        const bT = new Float64Array(dh * n);
        for (let j = 0; j < n; j++) for (let d = 0; d < dh; d++) bT[d * n + j] = b[j * dh + d];
        const ref = ex.attention(u.aggregate.name)!;
        const others = u.aggregate.selectors.filter((x) => x !== u.stmt.name).map((x) => ex.selector(x)!.scores);
        for (let i = 1; i < n; i++) {
          const o = i * n;
          let refArg = 0;
          for (let j = 1; j <= i; j++) if (ref[o + j] > ref[o + refArg]) refArg = j;
          // softmax of the current scores (after adding dim `d`'s term, when given: one pass for both), compared
          // with the program's attention of query i
          const compare = (k: number, d = -1): void => {
            let max = -Infinity;
            if (d >= 0) {
              const ad = a[i * dh + d];
              const bo = d * n;
              for (let j = 0; j <= i; j++) {
                base[j] += ad * bT[bo + j];
                z[j] = base[j] * scale;
                if (z[j] > max) max = z[j];
              }
            } else {
              for (let j = 0; j <= i; j++) {
                z[j] = base[j] * scale;
                if (z[j] > max) max = z[j];
              }
            }
            let sum = 0;
            let arg = 0;
            for (let j = 0; j <= i; j++) {
              const e = z[j] - max < -50 ? 0 : Math.exp(z[j] - max);
              z[j] = e;
              sum += e;
              if (e > z[arg]) arg = j;
            }
            let dist = 0;
            for (let j = 0; j <= i; j++) dist += Math.abs(z[j] / sum - ref[o + j]);
            tv[si][k] += dist / 2;
            // near-ties (weights within 0.01 in the program's attention) count as the same favourite
            if (ref[o + arg] >= ref[o + refArg] - 0.01) agree[si][k] += 1;
          };
          // the other selects' scores, then the kept dims' terms, one dim added per prefix
          base.fill(0, 0, i + 1);
          for (const sc of others) for (let j = 0; j <= i; j++) base[j] += sc[o + j];
          compare(0);
          orders[si].forEach((d, k) => compare(k + 1, d));
        }
      });
    }
  }

  const attributed = new Map<string, DimRef[]>();
  selects.forEach((u, si) => {
    const total = u.shares.reduce((x, y) => x + y, 0);
    const share = Array.from(u.shares, (v) => (total > 0 ? v / total : 0));
    const order = orders[si];
    const meanTv = Array.from(tv[si], (v) => (queries > 0 ? v / queries : 0));
    // the shortest prefix (at least one dim) that leaves at most `tolerance` of the select's effect, or a change
    // below `floor`; if none does (only with a misfit near maxMisfit), the closest one
    const allowed = Math.max(tolerance * meanTv[0], floor);
    let k = meanTv.findIndex((v, i) => i > 0 && v <= allowed);
    if (k < 0) k = meanTv.indexOf(Math.min(...meanTv.slice(1)), 1);
    const dims = order.slice(0, k).map((d) => ({ index: d, score: round4(share[d]) }));
    attributed.set(u.stmt.name, dims);
    explanations.push({
      line: u.stmt.name,
      kind: 'select',
      layer: u.layer,
      head: u.head,
      dims,
      shares: share.map(sig4),
      effect: round4(meanTv[0]),
      tv: round4(meanTv[k]),
      argmaxAgreement: round4(queries > 0 ? agree[si][k] / queries : 1),
      misfit: u.misfit,
    });
  });
  for (const u of aggregates) {
    // var(z_d) |W_O[d]|²: the variance dim d writes into the residual stream (a constant is only a bias)
    const mean = new Float64Array(dh);
    let rows = 0;
    for (const z of u.z) {
      rows += z.n;
      for (let i = 0; i < z.n; i++) for (let d = 0; d < dh; d++) mean[d] += z.data[i * dh + d];
    }
    for (let d = 0; d < dh; d++) mean[d] /= Math.max(rows, 1);
    // covariance of z, for the output variance of any set of dims: |Σ_d (z_d - mean_d) W_O[d]|²
    // (symmetric: the upper triangle, mirrored; each entry sums the very same products in the same order)
    // Four rows at a time: each entry adds their products one after the other, as row by row.
    const cov = new Float64Array(dh * dh);
    const x = new Float64Array(4 * dh);
    for (const z of u.z) {
      for (let i0 = 0; i0 < z.n; i0 += 4) {
        const m = Math.min(4, z.n - i0);
        for (let r = 0; r < m; r++) for (let d = 0; d < dh; d++) x[r * dh + d] = z.data[(i0 + r) * dh + d] - mean[d];
        for (let d = 0; d < dh; d++) {
          const [x0, x1, x2, x3] = [x[d], x[dh + d], x[2 * dh + d], x[3 * dh + d]];
          if (m === 4 && x0 !== 0 && x1 !== 0 && x2 !== 0 && x3 !== 0) {
            for (let e = d; e < dh; e++) {
              let c = cov[d * dh + e];
              c += x0 * x[e];
              c += x1 * x[dh + e];
              c += x2 * x[2 * dh + e];
              c += x3 * x[3 * dh + e];
              cov[d * dh + e] = c;
            }
            continue;
          }
          for (let r = 0; r < m; r++) {
            const xd = x[r * dh + d];
            if (xd === 0) continue;
            const ro = r * dh;
            for (let e = d; e < dh; e++) cov[d * dh + e] += xd * x[ro + e];
          }
        }
      }
    }
    for (let d = 0; d < dh; d++) for (let e = 0; e < d; e++) cov[d * dh + e] = cov[e * dh + d];
    const { o } = factors.head(u.layer, u.head)!;
    const gram = new Float64Array(dh * dh);
    for (let d = 0; d < dh; d++) {
      for (let e = 0; e < dh; e++) {
        let s = 0;
        for (let c = 0; c < factors.d; c++) s += o.data[d * factors.d + c] * o.data[e * factors.d + c];
        gram[d * dh + e] = s;
      }
    }
    const outputVariance = (set: (d: number) => boolean): number => {
      let s = 0;
      for (let d = 0; d < dh; d++) if (set(d)) for (let e = 0; e < dh; e++) if (set(e)) s += cov[d * dh + e] * gram[d * dh + e];
      return s;
    };
    const contrib = Float64Array.from({ length: dh }, (_, d) => cov[d * dh + d] * u.outNorm2[d]);
    const total = contrib.reduce((x, y) => x + y, 0);
    const share = Array.from(contrib, (v) => (total > 0 ? v / total : 0));
    const order = rank(contrib);
    const dims: DimRef[] = [];
    let covered = 0;
    for (const d of order) {
      if (dims.length >= maxDims || (dims.length > 0 && covered >= coverage)) break;
      dims.push({ index: d, score: round4(share[d]) });
      covered += share[d];
    }
    const kept = new Set(dims.map((x) => x.index));
    const all = outputVariance(() => true);
    const missing = outputVariance((d) => !kept.has(d));
    attributed.set(u.stmt.name, dims);
    explanations.push({
      line: u.stmt.name,
      kind: 'aggregate',
      layer: u.layer,
      head: u.head,
      dims,
      shares: share.map(sig4),
      fvu: all > 0 ? round4(missing / all) : 0,
    });
  }
  const out: Program = {
    ...program,
    statements: program.statements.map((s) => {
      const dims = attributed.get(s.name);
      if (!dims || !s.provenance) return s;
      const listed = dims.slice(0, Math.max(1, options.annotatedDims ?? 16));
      return {
        ...s,
        provenance: {
          ...s.provenance,
          dims: listed.map((d) => d.index),
          dimScores: listed.map((d) => d.score),
          ...(dims.length > listed.length ? { dimsMore: dims.length - listed.length } : {}),
        },
      };
    }),
  };
  explanations.sort((x, y) => program.statements.findIndex((s) => s.name === x.line) - program.statements.findIndex((s) => s.name === y.line));
  return { program: out, explanations };
}
