// The interpreter's numeric kernels, apart from the statement bookkeeping in index.ts.
//
// Values (Var): n x size, row-major. token, pos and anything exactly one-hot also carry the hot index per
// position, so consumers look entries up instead of multiplying. A dense value knows where each row's non-zeros end
// (rowWidth: a position-derived row at position i ends at column i), builds sparse rows when they pay, and, when it
// is the causal running mean of another value, which one (`meanOf`): aggregating it, or using it as a select's key,
// then takes a suffix or prefix sum instead of a dense product.
//
// Scores (ScoreRows): a select is kept as what one query row needs (key projections, q M, lookups), not as an
// n x n matrix. An aggregate pulls the causal part of each query row from its selects, turns the row into
// weights at once (WeightRows: rows of one query class reuse their exps while the row maximum agrees; a head
// shared by several aggregates keeps its weights) and applies them to the value (AggregateRows), choosing per row
// the cheapest route: a lookup scatter for one-hot values, a running mean for uniform rows, a suffix sum over the
// weights for "averages of averages" (a value that is itself a running mean), sparse or dense rows otherwise.
// Zero weights are skipped. Every route computes the same sums as d-rasp.md 6, at most in a different order
// (results agree to rounding; tests/interpreter/fastpaths.test.ts holds them to a dense evaluation).
import type { Basis, Matrix } from '../program/types';
import { UserError } from '../util/errors';
import type { Rows } from './elementwise';

/** The non-zero entries of each row (columns ascending). */
export interface SparseRows {
  start: Int32Array;
  col: Int32Array;
  val: Float64Array;
}

/** How often each fast path served (diagnostics: tests check that every path is exercised). */
export interface PathCounts {
  /** Aggregate rows by route: one-hot value, uniform row (running mean), suffix sum, sparse rows, dense rows. */
  hot: number;
  uniform: number;
  suffix: number;
  sparse: number;
  dense: number;
  /** Exps reused within a query class instead of recomputed. */
  reusedExps: number;
  /** Rows of weights replayed from a head shared by several aggregates. */
  storedRows: number;
  /** Selects whose key is a running mean, scored by prefix sums. */
  meanKeys: number;
}

export function emptyPaths(): PathCounts {
  return { hot: 0, uniform: 0, suffix: 0, sparse: 0, dense: 0, reusedExps: 0, storedRows: 0, meanKeys: 0 };
}

/**
 * A variable's value. One class with every field always present, so the kernels see a single object shape.
 *
 * Causality: a route chosen for row i may depend only on rows <= i, or a longer input would change the numbers of
 * earlier positions. Hence `hotRows` and `meanRows` count leading rows (a prefix of the input sees the same counts
 * up to its length), and routes that differ in rounding are chosen per row from them. `hot` (every row one-hot)
 * only picks between routes that give identical numbers.
 */
export class Var implements Rows {
  /** The rows as sparse lists, built on first use. */
  sparse: SparseRows | undefined = undefined;
  private dense: Float64Array | undefined;

  constructor(
    readonly basis: Basis,
    readonly n: number,
    data: Float64Array | undefined,
    /** 1 + the last non-zero column of each row: dense loops stop there. */
    readonly rowWidth: Int32Array,
    /** The largest rowWidth. */
    readonly width: number,
    /** The hot entry of each of the first `hotRows` rows, which are exactly one-hot. */
    readonly hotIdx: Int32Array,
    readonly hotRows: number,
    /** Rows 0..meanRows-1 are the causal running mean of `meanOf`: row j = (rows 0..j of meanOf) / (j + 1). */
    readonly meanOf: Var | undefined,
    readonly meanRows: number,
  ) {
    this.dense = data;
  }

  /** Entry index per position when every row is exactly one-hot. */
  get hot(): Int32Array | undefined {
    return this.hotRows === this.n ? this.hotIdx : undefined;
  }

  /** n x basis.size rows; a one-hot value without them (token, pos) builds them on first read. */
  get data(): Float64Array {
    if (!this.dense) {
      const size = this.basis.size;
      const hot = this.hotIdx;
      const data = new Float64Array(this.n * size);
      for (let i = 0; i < this.n; i++) data[i * size + hot[i]] = 1;
      this.dense = data;
    }
    return this.dense;
  }
}

/**
 * token/pos: every consumer uses the hot indices, so the dense rows (n x P can be large) are only built if someone
 * reads `data` (an element-wise primitive, a map, the debugger).
 */
export function oneHotVar(basis: Basis, hot: Int32Array): Var {
  const rowWidth = hot.map((h) => h + 1);
  return new Var(basis, hot.length, undefined, rowWidth, maxOf(rowWidth), hot, hot.length, undefined, 0);
}

/**
 * A value from its dense rows: row widths and (when `detect`) its leading exactly one-hot rows. `meanRows` leading
 * rows are the running mean of `meanOf`.
 */
export function denseVar(basis: Basis, data: Float64Array, n: number, detect: boolean, meanOf?: Var, meanRows = 0): Var {
  const size = basis.size;
  const rowWidth = new Int32Array(n);
  const hotIdx = new Int32Array(detect ? n : 0);
  let hotRows = detect ? -1 : 0;
  let width = 0;
  for (let i = 0; i < n; i++) {
    const off = i * size;
    let c = size - 1;
    while (c >= 0 && data[off + c] === 0) c--;
    rowWidth[i] = c + 1;
    if (c + 1 > width) width = c + 1;
    if (hotRows < 0) {
      // One-hot: the last non-zero is 1 and nothing precedes it.
      let a = 0;
      while (a < c && data[off + a] === 0) a++;
      if (c >= 0 && a === c && data[off + c] === 1) hotIdx[i] = c;
      else hotRows = i;
    }
  }
  if (hotRows < 0) hotRows = n;
  return new Var(basis, n, data, rowWidth, width, hotIdx, hotRows, meanRows > 0 ? meanOf : undefined, meanOf ? meanRows : 0);
}

export function maxOf(xs: Int32Array): number {
  let m = 0;
  for (const x of xs) if (x > m) m = x;
  return m;
}

/** The value's rows as sparse lists (built once, on first use). */
export function sparseOf(v: Var): SparseRows {
  if (!v.sparse) {
    const n = v.n;
    if (v.hotRows === n) {
      v.sparse = { start: Int32Array.from({ length: n + 1 }, (_, i) => i), col: v.hotIdx, val: new Float64Array(n).fill(1) };
    } else {
      const size = v.basis.size;
      const d = v.data;
      let nnz = 0;
      for (let i = 0; i < n; i++) {
        const off = i * size;
        for (let c = 0, w = v.rowWidth[i]; c < w; c++) if (d[off + c] !== 0) nnz++;
      }
      const start = new Int32Array(n + 1);
      const col = new Int32Array(nnz);
      const val = new Float64Array(nnz);
      let at = 0;
      for (let i = 0; i < n; i++) {
        start[i] = at;
        const off = i * size;
        for (let c = 0, w = v.rowWidth[i]; c < w; c++) {
          const x = d[off + c];
          if (x !== 0) {
            col[at] = c;
            val[at++] = x;
          }
        }
      }
      start[n] = at;
      v.sparse = { start, col, val };
    }
  }
  return v.sparse;
}

// ---------------------------------------------------------------------------------------------------------------
// Matrix analyses, cached per Matrix object. A caller may rewrite a named matrix's numbers in place between plans
// (e.g. while rounding), so each new Plan checks a fingerprint first (forgetIfChanged).

const fingerprints = new WeakMap<Matrix, number>();
export function forgetIfChanged(m: Matrix): void {
  let f = m.rows * 31 + m.cols;
  for (let i = 0; i < m.data.length; i++) f = (f * 1.0000001 + m.data[i] * ((i % 89) + 1)) % 1e15;
  if (fingerprints.get(m) !== f) {
    identicalRowsCache.delete(m);
    sparseCache.delete(m);
    f64Cache.delete(m);
    fingerprints.set(m, f);
  }
}

/** Whether every row of a matrix is the same (primitives, key-only-like predicates): scores factor then. */
const identicalRowsCache = new WeakMap<Matrix, boolean>();
function identicalRows(m: Matrix): boolean {
  let known = identicalRowsCache.get(m);
  if (known === undefined) {
    known = true;
    for (let r = 1; r < m.rows && known; r++) {
      for (let c = 0; c < m.cols; c++) {
        if (m.data[r * m.cols + c] !== m.data[c]) {
          known = false;
          break;
        }
      }
    }
    identicalRowsCache.set(m, known);
  }
  return known;
}

/** Non-zero entries per row of a mostly-zero matrix: predicate ops are usually sparse. */
const sparseCache = new WeakMap<Matrix, SparseRows | null>();
export function sparseRows(m: Matrix): SparseRows | undefined {
  let sp = sparseCache.get(m);
  if (sp === undefined) {
    let nnz = 0;
    for (let i = 0; i < m.data.length; i++) if (m.data[i] !== 0) nnz++;
    sp = null;
    if (nnz <= m.data.length / 2) {
      const start = new Int32Array(m.rows + 1);
      const col = new Int32Array(nnz);
      const val = new Float64Array(nnz);
      let at = 0;
      for (let r = 0; r < m.rows; r++) {
        start[r] = at;
        for (let c = 0; c < m.cols; c++) {
          const v = m.data[r * m.cols + c];
          if (v !== 0) {
            col[at] = c;
            val[at++] = v;
          }
        }
      }
      start[m.rows] = at;
      sp = { start, col, val };
    }
    sparseCache.set(m, sp);
  }
  return sp ?? undefined;
}

/** Float64 numbers of a matrix (named matrices may hold float32): one element type keeps the kernels monomorphic. */
const f64Cache = new WeakMap<Matrix, { src: Matrix['data']; data: Float64Array }>();
function f64(M: Matrix): Float64Array {
  if (M.data instanceof Float64Array) return M.data;
  let c = f64Cache.get(M);
  if (!c || c.src !== M.data) {
    c = { src: M.data, data: Float64Array.from(M.data) };
    f64Cache.set(M, c);
  }
  return c.data;
}

// ---------------------------------------------------------------------------------------------------------------
// Dense products.

/**
 * out[oo + c] += sum_t wt[t] * src[idx[t] * stride + c] for c below row idx[t]'s width (widths[idx[t]], or `width`
 * for every row when widths is undefined). Four source rows per pass: a quarter of the loads and stores of `out`.
 */
export function combineRows(
  out: Float64Array,
  oo: number,
  src: Float64Array,
  stride: number,
  idx: Int32Array,
  wt: Float64Array,
  count: number,
  widths: Int32Array | undefined,
  width: number,
): void {
  let t = 0;
  for (; t + 3 < count; t += 4) {
    const r1 = idx[t];
    const r2 = idx[t + 1];
    const r3 = idx[t + 2];
    const r4 = idx[t + 3];
    const x1 = wt[t];
    const x2 = wt[t + 1];
    const x3 = wt[t + 2];
    const x4 = wt[t + 3];
    const o1 = r1 * stride;
    const o2 = r2 * stride;
    const o3 = r3 * stride;
    const o4 = r4 * stride;
    const w1 = widths ? widths[r1] : width;
    const w2 = widths ? widths[r2] : width;
    const w3 = widths ? widths[r3] : width;
    const w4 = widths ? widths[r4] : width;
    const common = Math.min(w1, w2, w3, w4);
    for (let c = 0; c < common; c++) {
      out[oo + c] += x1 * src[o1 + c] + x2 * src[o2 + c] + (x3 * src[o3 + c] + x4 * src[o4 + c]);
    }
    for (let c = common; c < w1; c++) out[oo + c] += x1 * src[o1 + c];
    for (let c = common; c < w2; c++) out[oo + c] += x2 * src[o2 + c];
    for (let c = common; c < w3; c++) out[oo + c] += x3 * src[o3 + c];
    for (let c = common; c < w4; c++) out[oo + c] += x4 * src[o4 + c];
  }
  for (; t < count; t++) {
    const x = wt[t];
    const o = idx[t] * stride;
    const w = widths ? widths[idx[t]] : width;
    for (let c = 0; c < w; c++) out[oo + c] += x * src[o + c];
  }
}

/**
 * X (n x M.rows) times M, reading only the first rowWidth[i] columns of row i of X and computing only the first
 * `colWidth` output columns; zero entries of X are skipped, and so are those of M when it is mostly zero.
 */
export function rowsTimes(x: Float64Array, n: number, rowWidth: Int32Array, M: Matrix, colWidth: number): Float64Array {
  const r = M.rows;
  const cols = M.cols;
  const out = new Float64Array(n * cols);
  const sp = sparseRows(M);
  // Scattered sparse updates cost several dense ones: only a matrix at most 1/8 full goes the sparse way.
  if (sp && sp.start[r] * 8 <= r * cols) {
    const { col, val, start } = sp;
    for (let i = 0; i < n; i++) {
      const oo = i * cols;
      const xo = i * r;
      for (let a = 0, width = rowWidth[i]; a < width; a++) {
        const w = x[xo + a];
        if (w === 0) continue;
        for (let e = start[a], end = start[a + 1]; e < end; e++) {
          const c = col[e];
          if (c >= colWidth) break;
          out[oo + c] += w * val[e];
        }
      }
    }
    return out;
  }
  const m = f64(M);
  const idx = new Int32Array(r);
  const wt = new Float64Array(r);
  for (let i = 0; i < n; i++) {
    const xo = i * r;
    let count = 0;
    for (let a = 0, width = rowWidth[i]; a < width; a++) {
      const w = x[xo + a];
      if (w === 0) continue;
      idx[count] = a;
      wt[count++] = w;
    }
    combineRows(out, i * cols, m, cols, idx, wt, count, undefined, colWidth);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Select scores S[i, j] = x_q(i) M x_k(j), one query row at a time.

/** The first column of a[ao ..] below `width` that is not a finite number (`width` if none). */
function firstNonFinite(a: Matrix['data'], ao: number, width: number): number {
  for (let c = 0; c < width; c++) if (!Number.isFinite(a[ao + c])) return c;
  return width;
}

/**
 * Dot products of a row vector a (a row of M, or of q M) with the key rows k(j). Per key, by the cheapest route:
 *  - a one-hot key row: a lookup;
 *  - a key row that is a running mean of y: a prefix sum, a . k(j) = (a . y(0) + ... + a . y(j)) / (j+1);
 *  - the non-zeros of a sparse M row or of the key row (the same products in the same order);
 *  - a dense key row: all columns, with four running sums.
 * The choice for key j depends on rows <= j only (see Var on causality).
 */
class KeyDots {
  private readonly ks: SparseRows;
  private readonly ys: SparseRows | undefined;
  private readonly meanRows: number;
  /** fill() starts at key 0 whatever `lo` is (the prefix sums). */
  readonly prefix: boolean;

  constructor(
    private readonly k: Var,
    paths: PathCounts,
  ) {
    this.ks = sparseOf(k);
    this.ys = k.meanOf ? sparseOf(k.meanOf) : undefined;
    this.meanRows = this.ys ? k.meanRows : 0;
    this.prefix = this.meanRows > 0;
    if (this.prefix) paths.meanKeys++;
  }

  /**
   * out[oo + j] (= or += when `add`) = a[ao ..] . k(j) for keys j in [lo, hi). `sp`: the sparse rows of the matrix
   * `a` comes from, when it has them, with a its row r.
   */
  fill(
    a: Matrix['data'],
    ao: number,
    sp: SparseRows | undefined,
    r: number,
    lo: number,
    hi: number,
    out: Float64Array,
    oo: number,
    add: boolean,
  ): void {
    const k = this.k;
    // One-hot key rows first: a lookup, the exact number every other route gives for them.
    const hotEnd = Math.min(hi, k.hotRows);
    const hot = k.hotIdx;
    for (let j = lo; j < hotEnd; j++) {
      if (add) out[oo + j] += a[ao + hot[j]];
      else out[oo + j] = a[ao + hot[j]];
    }
    const meanEnd = Math.min(hi, this.meanRows);
    if (meanEnd > Math.max(lo, hotEnd)) {
      // Key rows that are running means (the prefix sums run over every earlier key, including those below lo).
      const { start, col, val } = this.ys as SparseRows;
      const first = Math.max(lo, hotEnd);
      let acc = 0;
      for (let j = 0; j < meanEnd; j++) {
        for (let e = start[j], end = start[j + 1]; e < end; e++) acc += a[ao + col[e]] * val[e];
        if (j < first) continue;
        const s = acc / (j + 1);
        if (add) out[oo + j] += s;
        else out[oo + j] = s;
      }
    }
    const from = Math.max(lo, hotEnd, meanEnd);
    if (from >= hi) return;
    const { start, col, val } = this.ks;
    const spCount = sp ? sp.start[r + 1] - sp.start[r] : Infinity;
    const x = k.data;
    const size = k.basis.size;
    const rw = k.rowWidth;
    // Four running sums over every column add zero products for zero key entries: exact only where a is finite.
    const finite = firstNonFinite(a, ao, k.width);
    for (let j = from; j < hi; j++) {
      const width = rw[j];
      const nnz = start[j + 1] - start[j];
      let s = 0;
      if (sp && spCount <= nnz) {
        const sc = sp.col;
        const sv = sp.val;
        const xo = j * size;
        for (let e = sp.start[r], end = sp.start[r + 1]; e < end; e++) {
          const c = sc[e];
          if (c >= width) break;
          s += sv[e] * x[xo + c];
        }
      } else if (4 * nnz <= width || width > finite) {
        for (let e = start[j], end = start[j + 1]; e < end; e++) s += a[ao + col[e]] * val[e];
      } else {
        const xo = j * size;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        let c = 0;
        for (; c + 3 < width; c += 4) {
          s += a[ao + c] * x[xo + c];
          s1 += a[ao + c + 1] * x[xo + c + 1];
          s2 += a[ao + c + 2] * x[xo + c + 2];
          s3 += a[ao + c + 3] * x[xo + c + 3];
        }
        for (; c < width; c++) s += a[ao + c] * x[xo + c];
        s = s + s1 + (s2 + s3);
      }
      if (add) out[oo + j] += s;
      else out[oo + j] = s;
    }
  }
}

export interface ScoreRows {
  /** z[zo + j] = S[i, j] (or += when `add`) for keys j in [lo, hi). */
  row(i: number, lo: number, hi: number, z: Float64Array, zo: number, add: boolean): void;
  /** A class per query row such that rows of one class have identical scores (undefined: none known). */
  queryClasses(): Int32Array | undefined;
}

/** Key-only, or every query row of M alike: S[i, j] = (sum of q(i)) * (row . k(j)). */
class FactorScores implements ScoreRows {
  private readonly kv: Float64Array;
  private readonly qs: Float64Array | undefined;

  constructor(M: Matrix, q: Var | undefined, k: Var, n: number, paths: PathCounts) {
    const kv = new Float64Array(n);
    if (k.hot) {
      for (let j = 0; j < n; j++) kv[j] = M.data[k.hot[j]];
    } else {
      new KeyDots(k, paths).fill(M.data, 0, sparseRows(M), 0, 0, n, kv, 0, false);
    }
    this.kv = kv;
    if (q && !q.hot) {
      const qs = new Float64Array(n);
      const qd = q.data;
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let r = 0; r < q.rowWidth[i]; r++) s += qd[i * M.rows + r];
        qs[i] = s;
      }
      this.qs = qs;
    }
  }

  queryClasses(): Int32Array | undefined {
    const qs = this.qs;
    if (!qs) return new Int32Array(this.kv.length);
    const ids = new Map<number, number>();
    return Int32Array.from(qs, (x) => {
      let id = ids.get(x);
      if (id === undefined) ids.set(x, (id = ids.size));
      return id;
    });
  }

  row(i: number, lo: number, hi: number, z: Float64Array, zo: number, add: boolean): void {
    const s = this.qs ? this.qs[i] : 1;
    const kv = this.kv;
    if (add) for (let j = lo; j < hi; j++) z[zo + j] += s * kv[j];
    else for (let j = lo; j < hi; j++) z[zo + j] = s * kv[j];
  }
}

/** One-hot q and k: S[i, j] = M[q(i), k(j)]. */
class LookupScores implements ScoreRows {
  constructor(
    private readonly M: Matrix,
    private readonly qh: Int32Array,
    private readonly kh: Int32Array,
  ) {}

  queryClasses(): Int32Array {
    return this.qh;
  }

  row(i: number, lo: number, hi: number, z: Float64Array, zo: number, add: boolean): void {
    const md = this.M.data;
    const kh = this.kh;
    const ro = this.qh[i] * this.M.cols;
    if (add) for (let j = lo; j < hi; j++) z[zo + j] += md[ro + kh[j]];
    else for (let j = lo; j < hi; j++) z[zo + j] = md[ro + kh[j]];
  }
}

/** One-hot q, dense k: S[i, j] = M[q(i), :] . k(j), kept per M row when several queries share it. */
class HotQueryScores implements ScoreRows {
  private readonly keys: KeyDots;
  private readonly sp: SparseRows | undefined;
  /** How many queries use each M row. */
  private readonly uses: Int32Array;
  private readonly vals = new Map<number, Float64Array>();
  private readonly upto: Int32Array;

  constructor(
    private readonly M: Matrix,
    private readonly qh: Int32Array,
    k: Var,
    private readonly n: number,
    paths: PathCounts,
  ) {
    this.keys = new KeyDots(k, paths);
    this.sp = sparseRows(M);
    this.uses = new Int32Array(M.rows);
    for (const r of qh) this.uses[r]++;
    this.upto = new Int32Array(M.rows);
  }

  queryClasses(): Int32Array {
    return this.qh;
  }

  row(i: number, lo: number, hi: number, z: Float64Array, zo: number, add: boolean): void {
    const r = this.qh[i];
    const { M, keys } = this;
    if (this.uses[r] <= 1) {
      keys.fill(M.data, r * M.cols, this.sp, r, lo, hi, z, zo, add);
      return;
    }
    let vals = this.vals.get(r);
    if (!vals) {
      vals = new Float64Array(this.n);
      this.vals.set(r, vals);
    }
    if (hi > this.upto[r]) {
      // A prefix sum starts at key 0 anyway: then do every key at once.
      const end = keys.prefix ? this.n : hi;
      keys.fill(M.data, r * M.cols, this.sp, r, this.upto[r], end, vals, 0, false);
      this.upto[r] = end;
    }
    if (add) for (let j = lo; j < hi; j++) z[zo + j] += vals[j];
    else for (let j = lo; j < hi; j++) z[zo + j] = vals[j];
  }
}

/**
 * Dense q: QM = q M over the columns the keys reach, then a lookup (one-hot k) or a dot product per key. A one-hot
 * query row goes exactly as HotQueryScores would take it (M's row), so the numbers do not depend on whether every
 * other query row is one-hot too.
 */
class DenseQueryScores implements ScoreRows {
  private readonly QM: Float64Array;
  private readonly keys: KeyDots | undefined;
  private readonly sp: SparseRows | undefined;

  constructor(
    private readonly M: Matrix,
    private readonly q: Var,
    private readonly k: Var,
    n: number,
    paths: PathCounts,
  ) {
    this.QM = rowsTimes(q.data, n, q.rowWidth, M, k.width);
    this.keys = k.hot ? undefined : new KeyDots(k, paths);
    this.sp = sparseRows(M);
  }

  queryClasses(): undefined {
    return undefined;
  }

  row(i: number, lo: number, hi: number, z: Float64Array, zo: number, add: boolean): void {
    const { QM, k, keys } = this;
    const cols = this.M.cols;
    const qo = i * cols;
    if (!keys) {
      const kh = k.hot as Int32Array;
      if (add) for (let j = lo; j < hi; j++) z[zo + j] += QM[qo + kh[j]];
      else for (let j = lo; j < hi; j++) z[zo + j] = QM[qo + kh[j]];
      return;
    }
    if (i < this.q.hotRows) {
      const r = this.q.hotIdx[i];
      keys.fill(this.M.data, r * cols, this.sp, r, lo, hi, z, zo, add);
    } else {
      keys.fill(QM, qo, undefined, i, lo, hi, z, zo, add);
    }
  }
}

/** The scores of a select with matrix M (rows: q's basis or one row; cols: k's basis). */
export function scoreRows(M: Matrix, q: Var | undefined, k: Var, n: number, paths: PathCounts): ScoreRows {
  if (!q || identicalRows(M)) return new FactorScores(M, q, k, n, paths);
  if (q.hot && k.hot) return new LookupScores(M, q.hot, k.hot);
  if (q.hot) return new HotQueryScores(M, q.hot, k, n, paths);
  return new DenseQueryScores(M, q, k, n, paths);
}

// ---------------------------------------------------------------------------------------------------------------
// Attention weights, one causal row at a time.

/** Row i's weights: w[j] for j <= i, the keys with non-zero weight in nz[0..count) (ascending). */
export interface WeightRows {
  readonly w: Float64Array;
  readonly nz: Int32Array;
  count: number;
  /** Every key of the row has the same weight 1/(i+1). */
  uniform: boolean;
  compute(i: number): void;
}

/** Attention weights of a whole head kept for reuse (several aggregates over the same selectors). */
export interface StoredWeights {
  /** n x n, zero above the diagonal. */
  W: Float64Array;
  uniform: Uint8Array;
}

/** s=[]: uniform over the prefix. */
export class UniformRows implements WeightRows {
  readonly w: Float64Array;
  readonly nz: Int32Array;
  count = 0;
  uniform = true;

  constructor(n: number) {
    this.w = new Float64Array(n);
    this.nz = Int32Array.from({ length: n }, (_, j) => j);
  }

  compute(i: number): void {
    this.w.fill(1 / (i + 1), 0, i + 1);
    this.count = i + 1;
  }
}

/**
 * Query classes of a selector sum: rows of one class have identical summed scores on every key. Undefined when
 * unknown or when no class repeats.
 */
function sumClasses(scores: ScoreRows[], n: number): Int32Array | undefined {
  let out: Int32Array | undefined;
  let classes = 1;
  for (const s of scores) {
    const c = s.queryClasses();
    if (!c) return undefined;
    let k = 0;
    for (let i = 0; i < n; i++) if (c[i] >= k) k = c[i] + 1;
    if (classes * k > 2 ** 30) return undefined;
    if (!out) out = new Int32Array(c);
    else for (let i = 0; i < n; i++) out[i] = out[i] * k + c[i];
    classes *= k;
  }
  if (!out) return undefined;
  if (classes <= 4 * n) {
    const seen = new Uint8Array(classes);
    for (let i = 0; i < n; i++) {
      if (seen[out[i]]) return out;
      seen[out[i]] = 1;
    }
    return undefined;
  }
  return new Set(out).size < n ? out : undefined;
}

/** Exps of one query class, valid for keys below `upto` while the row maximum is `max`. */
interface ExpCache {
  e: Float64Array;
  upto: number;
  max: number;
}

/**
 * Softmax over the summed, scaled causal scores of the selects. Rows of one query class (the same query token,
 * say) share their scores on common keys, so while their maximum agrees the exps of earlier keys are reused and
 * only the new keys' are computed: the same numbers, without most of the Math.exp calls.
 */
export class SoftmaxRows implements WeightRows {
  readonly w: Float64Array;
  readonly nz: Int32Array;
  count = 0;
  uniform = false;
  private readonly classes: Int32Array | undefined;
  private readonly caches = new Map<number, ExpCache>();

  constructor(
    private readonly scores: ScoreRows[],
    private readonly scale: number,
    private readonly n: number,
    private readonly paths: PathCounts,
    /** When given, every computed row is also written here. */
    private readonly store?: StoredWeights,
  ) {
    this.w = new Float64Array(n);
    this.nz = new Int32Array(n);
    this.classes = sumClasses(scores, n);
  }

  compute(i: number): void {
    const { w, nz, scores, scale } = this;
    const m = i + 1;
    scores[0].row(i, 0, m, w, 0, false);
    for (let t = 1; t < scores.length; t++) scores[t].row(i, 0, m, w, 0, true);
    let max = -Infinity;
    let min = Infinity;
    for (let j = 0; j < m; j++) {
      const z = w[j] * scale;
      if (!Number.isFinite(z)) {
        throw new UserError(`the attention score of query ${i} on key ${j} is ${z} (check the op matrices)`);
      }
      w[j] = z;
      if (z > max) max = z;
      if (z < min) min = z;
    }
    let count = 0;
    if (max === min) {
      // Every exp is 1 and the sum is i+1.
      const u = 1 / m;
      for (let j = 0; j < m; j++) {
        w[j] = u;
        nz[j] = j;
      }
      count = m;
      this.uniform = true;
    } else {
      let cache: ExpCache | undefined;
      let from = 0;
      if (this.classes) {
        const c = this.classes[i];
        cache = this.caches.get(c);
        if (!cache) {
          cache = { e: new Float64Array(this.n), upto: 0, max };
          this.caches.set(c, cache);
        } else if (cache.max === max) {
          from = cache.upto;
        }
        cache.max = max;
        cache.upto = m;
      }
      let sum = 0;
      if (cache) {
        this.paths.reusedExps += from;
        const ce = cache.e;
        for (let j = 0; j < from; j++) {
          const e = ce[j];
          w[j] = e;
          if (e !== 0) {
            nz[count++] = j;
            sum += e;
          }
        }
      }
      for (let j = from; j < m; j++) {
        const d = w[j] - max;
        // Weights below e^-50 (~2e-22) are dropped: far below float32 resolution of the sums they join, and
        // keeping them breeds subnormal numbers that slow every later product ~100x. Dropping them also lets
        // hard (1e4-scaled) attention come out exactly one-hot, which later statements exploit.
        const e = d === 0 ? 1 : d < -50 ? 0 : Math.exp(d);
        w[j] = e;
        if (e !== 0) {
          nz[count++] = j;
          sum += e;
        }
      }
      if (cache) cache.e.set(w.subarray(from, m), from);
      for (let t = 0; t < count; t++) w[nz[t]] /= sum;
      this.uniform = false;
    }
    this.count = count;
    if (this.store) {
      this.store.W.set(w.subarray(0, m), i * w.length);
      this.store.uniform[i] = this.uniform ? 1 : 0;
    }
  }
}

/** Rows of stored weights. */
export class StoredRows implements WeightRows {
  readonly w: Float64Array;
  readonly nz: Int32Array;
  count = 0;
  uniform = false;

  constructor(
    private readonly stored: StoredWeights,
    private readonly n: number,
    private readonly paths: PathCounts,
  ) {
    this.w = new Float64Array(n);
    this.nz = new Int32Array(n);
  }

  compute(i: number): void {
    const { w, nz } = this;
    const W = this.stored.W;
    const o = i * this.n;
    let count = 0;
    for (let j = 0; j <= i; j++) {
      const x = W[o + j];
      w[j] = x;
      if (x !== 0) nz[count++] = j;
    }
    this.count = count;
    this.uniform = this.stored.uniform[i] === 1;
    this.paths.storedRows++;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Aggregation: out(i) = sum_j w_ij v(j), one query row at a time.

export class AggregateRows {
  private readonly size: number;
  /** Sparse rows of v and their lengths (when some row of v is not one-hot). */
  private readonly vs: SparseRows | undefined;
  /** v's first meanRows rows are the running mean of y: sparse rows of y for the suffix route. */
  private readonly ys: SparseRows | undefined;
  private readonly meanRows: number;
  /** Running sum of v's rows 0..accUpto-1, for uniform rows. */
  private acc: Float64Array | undefined;
  private accUpto = 0;
  private accWidth = 0;
  /** The row's non-zero weights, gathered for combineRows. */
  private wt: Float64Array | undefined;

  constructor(
    private readonly v: Var,
    private readonly paths: PathCounts,
  ) {
    this.size = v.basis.size;
    if (v.hotRows < v.n) this.vs = sparseOf(v);
    this.ys = v.meanOf ? sparseOf(v.meanOf) : undefined;
    this.meanRows = this.ys ? v.meanRows : 0;
  }

  /**
   * out[oo ..] = row i of the aggregate, with row i's weights in `att`; `out` starts at zero. The route depends on
   * the weights of row i and on the rows of v up to its last non-zero weight only (see Var on causality).
   */
  row(i: number, att: WeightRows, out: Float64Array, oo: number): void {
    const { w, nz, count } = att;
    const v = this.v;
    const last = nz[count - 1];
    if (last < v.hotRows) {
      // One-hot value rows: add each weight into its column.
      const hot = v.hotIdx;
      for (let t = 0; t < count; t++) {
        const j = nz[t];
        out[oo + hot[j]] += w[j];
      }
      this.paths.hot++;
      return;
    }
    if (att.uniform) {
      this.runningMean(i, out, oo);
      this.paths.uniform++;
      return;
    }
    const { start, col, val } = this.vs as SparseRows;
    const rw = v.rowWidth;
    let sparseCost = 0;
    let denseCost = 0;
    for (let t = 0; t < count; t++) {
      const j = nz[t];
      sparseCost += start[j + 1] - start[j];
      denseCost += rw[j];
    }
    // A scattered sparse update costs about two dense ones (which go four rows at a time).
    const direct = Math.min(2 * sparseCost, denseCost);
    const ys = this.ys;
    if (ys && last < this.meanRows && 2 * ys.start[last + 1] + last < direct) {
      // v(j) = (y(0) + ... + y(j)) / (j+1), so sum_j w_j v(j) = sum_l y(l) * (sum_{j >= l} w_j / (j+1)).
      const yc = ys.col;
      const yv = ys.val;
      const ystart = ys.start;
      let s = 0;
      for (let l = last; l >= 0; l--) {
        const x = w[l];
        if (x !== 0) s += x / (l + 1);
        for (let e = ystart[l], end = ystart[l + 1]; e < end; e++) out[oo + yc[e]] += s * yv[e];
      }
      this.paths.suffix++;
      return;
    }
    if (2 * sparseCost <= denseCost) {
      for (let t = 0; t < count; t++) {
        const j = nz[t];
        const x = w[j];
        for (let e = start[j], end = start[j + 1]; e < end; e++) out[oo + col[e]] += x * val[e];
      }
      this.paths.sparse++;
      return;
    }
    const wt = (this.wt ??= new Float64Array(v.n));
    for (let t = 0; t < count; t++) wt[t] = w[nz[t]];
    combineRows(out, oo, v.data, this.size, nz, wt, count, rw, 0);
    this.paths.dense++;
  }

  /** Uniform row i: the mean of v's rows 0..i from a running sum (extended to row i on demand). */
  private runningMean(i: number, out: Float64Array, oo: number): void {
    const v = this.v;
    const size = this.size;
    const acc = (this.acc ??= new Float64Array(size));
    const vd = v.data;
    const rw = v.rowWidth;
    for (let j = this.accUpto; j <= i; j++) {
      const vo = j * size;
      const width = rw[j];
      for (let c = 0; c < width; c++) acc[c] += vd[vo + c];
      if (width > this.accWidth) this.accWidth = width;
    }
    this.accUpto = i + 1;
    const m = i + 1;
    for (let c = 0, width = this.accWidth; c < width; c++) out[oo + c] = acc[c] / m;
  }
}
