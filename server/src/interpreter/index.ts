// Steppable evaluation of a Program on one input (d-rasp.md section 6). One statement per step(), so the
// debugger can pause anywhere; runToEnd()/runProgram()/runBatch() for everything else.
//
// Speed: token/pos (and anything that turns out exactly one-hot, e.g. an aggregate whose attention is a hard
// 1e4-scaled pick) carry the index of their hot entry per position. A select between one-hot q and k is then a
// lookup of M entries, and aggregating a one-hot value adds weights into columns; dense products are used only
// for genuinely dense variables.
import type { Basis, Program, Statement, Matrix, SelectStatement, ProjectStatement } from '../program/types';
import { inferBases, posBasis, tokenBasis } from '../program/bases';
import { CancelledError, UserError } from '../util/errors';
import { applyCartesian, applyMlp, applyUnary, detectHot, type Rows } from './elementwise';
import { compileMap, type Compiled, type MapCtx } from './expr';
import { statementMatrix, UNIT_BASIS } from './ops';

export { opMatrix, specialRows, statementMatrix, UNIT_BASIS } from './ops';

/** Attention keeps n x n matrices per select and head; longer inputs would exhaust memory. */
export const MAX_INPUT_LENGTH = 8192;

export interface VariableValue {
  basis: Basis;
  n: number;
  /** n x basis.size, one row per position. */
  data: Float64Array;
}

export interface SelectorValue {
  n: number;
  /** n x n raw scores before scaling and masking. */
  scores: Float64Array;
}

export interface RunResult {
  tokens: string[];
  /** n x V summed logits. */
  logits: Float64Array;
  /** Per position: the argmax token (softmax) or the tokens with logit > 0 (sigmoid). */
  prediction: (string | string[])[];
}

/** A problem found while running a program on an input; `statement` is where it happened (when known). */
export class RuntimeError extends UserError {
  constructor(
    /** The problem without the file/line prefix. */
    readonly detail: string,
    readonly statement?: Statement,
    file?: string,
  ) {
    super(statement ? `line ${statement.line} (${statement.name}): ${detail}` : detail, file);
    this.name = 'RuntimeError';
  }
}

function firstReader(program: Program, name: string): Statement | undefined {
  return program.statements.find((s) => {
    switch (s.kind) {
      case 'select':
        return s.q === name || s.k === name;
      case 'aggregate':
        return s.v === name;
      case 'elementwise':
        return s.inputs.includes(name);
      case 'project':
        return s.inp === name;
      default:
        return false;
    }
  });
}

/** Token ids of a space-separated input (special tokens written <bos>, <sep>, <eos>, <pad>; nothing added). */
export function tokenize(program: Program, input: string): number[] {
  const words = input.trim().split(/\s+/).filter((w) => w.length > 0);
  if (words.length === 0) throw new RuntimeError('the input is empty', undefined, program.file);
  const ids = new Map<string, number>();
  program.header.vocab.forEach((t, i) => {
    if (!ids.has(t)) ids.set(t, i);
  });
  return words.map((w, p) => {
    const id = ids.get(w);
    if (id === undefined) {
      const shown = program.header.vocab.length <= 40 ? ` (vocabulary: ${program.header.vocab.join(' ')})` : '';
      throw new RuntimeError(
        `input token '${w}' at position ${p} is not in the vocabulary${shown}`,
        firstReader(program, 'token'),
        program.file,
      );
    }
    return id;
  });
}

/**
 * What a run needs that does not depend on the input: bases, statement matrices, compiled maps. Build one and pass
 * it as `options.plan` to reuse it across Executions of the same program.
 */
export class Plan {
  readonly bases: Map<string, Basis>;
  readonly vocab: Basis;
  readonly pos: Basis;
  private readonly matrices = new Map<Statement, Matrix>();
  private readonly maps = new Map<Statement, Compiled<MapCtx>>();

  constructor(readonly program: Program) {
    this.bases = inferBases(program);
    this.vocab = tokenBasis(program);
    this.pos = posBasis(program);
  }

  basis(name: string): Basis {
    const b = this.bases.get(name);
    if (!b) throw new UserError(`'${name}' has no basis`);
    return b;
  }

  matrix(stmt: SelectStatement | ProjectStatement): Matrix {
    let m = this.matrices.get(stmt);
    if (!m) {
      const rows = stmt.kind === 'select' ? (stmt.q !== undefined ? this.basis(stmt.q) : UNIT_BASIS) : stmt.inp !== undefined ? this.basis(stmt.inp) : UNIT_BASIS;
      const cols = stmt.kind === 'select' ? this.basis(stmt.k) : this.vocab;
      m = statementMatrix(this.program, stmt, rows, cols);
      forgetIfChanged(m);
      this.matrices.set(stmt, m);
    }
    return m;
  }

  map(stmt: Statement & { kind: 'elementwise' }): Compiled<MapCtx> {
    let c = this.maps.get(stmt);
    if (!c) {
      if (stmt.fn.name !== 'expr') throw new Error('not a map');
      c = compileMap(this.program, stmt.fn.expr, this.bases);
      this.maps.set(stmt, c);
    }
    return c;
  }
}

interface Var extends Rows {
  n: number;
  /** 1 + the last non-zero column of each row: dense loops stop there (a position-derived value at position i
   * never reaches beyond column i, however large P is). */
  rowWidth: Int32Array;
  /** The largest rowWidth. */
  width: number;
}

// Analyses of a matrix (identical rows, sparse rows) are cached per Matrix object. A caller may rewrite a named
// matrix's numbers in place between plans (e.g. while rounding), so each new Plan checks a fingerprint first.
const fingerprints = new WeakMap<Matrix, number>();
function forgetIfChanged(m: Matrix): void {
  let f = m.rows * 31 + m.cols;
  for (let i = 0; i < m.data.length; i++) f = (f * 1.0000001 + m.data[i] * ((i % 89) + 1)) % 1e15;
  if (fingerprints.get(m) !== f) {
    identicalRowsCache.delete(m);
    sparseCache.delete(m);
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

/** Non-zero entries per row (columns ascending) of a mostly-zero matrix: predicate ops are usually sparse. */
interface SparseRows {
  start: Int32Array;
  col: Int32Array;
  val: Float64Array;
}

const sparseCache = new WeakMap<Matrix, SparseRows | null>();
function sparseRows(m: Matrix): SparseRows | undefined {
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

/** Row r of M dotted with x[xo .. xo+width). */
function rowDot(M: Matrix, sp: SparseRows | undefined, r: number, x: Float64Array, xo: number, width: number): number {
  if (!sp) return dot(M.data, r * M.cols, x, xo, width);
  let s = 0;
  for (let e = sp.start[r]; e < sp.start[r + 1]; e++) {
    const c = sp.col[e];
    if (c >= width) break;
    s += sp.val[e] * x[xo + c];
  }
  return s;
}

/**
 * token/pos: every consumer uses the hot indices, so the dense rows (n x P can be large) are only built if someone
 * reads `data` (an element-wise primitive, a map, the debugger).
 */
function oneHotVar(basis: Basis, hot: Int32Array): Var {
  const n = hot.length;
  const rowWidth = hot.map((h) => h + 1);
  let data: Float64Array | undefined;
  return {
    basis,
    n,
    hot,
    rowWidth,
    width: maxOf(rowWidth),
    get data(): Float64Array {
      if (!data) {
        data = new Float64Array(n * basis.size);
        for (let i = 0; i < n; i++) data[i * basis.size + hot[i]] = 1;
      }
      return data;
    },
  };
}

function rowWidths(data: Float64Array, n: number, size: number): Int32Array {
  const widths = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const off = i * size;
    let c = size - 1;
    while (c >= 0 && data[off + c] === 0) c--;
    widths[i] = c + 1;
  }
  return widths;
}

function maxOf(xs: Int32Array): number {
  let m = 0;
  for (const x of xs) if (x > m) m = x;
  return m;
}

export interface ExecutionOptions {
  signal?: AbortSignal;
}

export class Execution {
  readonly tokens: number[];
  readonly n: number;
  private readonly plan: Plan;
  private readonly program: Program;
  private readonly signal?: AbortSignal;
  private next = 0;
  private readonly vars = new Map<string, Var>();
  private readonly selectors = new Map<string, SelectorValue>();
  /** Selects whose scores on later keys (j > i) are not computed yet. */
  private readonly pendingScores = new Map<string, SelectStatement>();
  private readonly weights = new Map<string, Float64Array>();
  /** Attention weights per selector sum, shared by the aggregates of one head. */
  private readonly weightsBySum = new Map<string, Float64Array>();
  private final?: RunResult;

  constructor(program: Program, input: string | number[], options: ExecutionOptions & { plan?: Plan } = {}) {
    this.program = program;
    this.plan = options.plan ?? new Plan(program);
    this.signal = options.signal;
    this.tokens = typeof input === 'string' ? tokenize(program, input) : checkIds(program, input);
    const n = this.tokens.length;
    this.n = n;
    const P = program.header.positions;
    if (n > MAX_INPUT_LENGTH) {
      throw new RuntimeError(`the input has ${n} tokens; at most ${MAX_INPUT_LENGTH} are supported`, undefined, program.file);
    }
    if (n > P) {
      throw new RuntimeError(
        `the input has ${n} tokens but the program's positions are 0..${P - 1}`,
        firstReader(program, 'pos'),
        program.file,
      );
    }
    const tokHot = Int32Array.from(this.tokens);
    const posHot = Int32Array.from({ length: n }, (_, i) => i);
    this.vars.set('token', oneHotVar(this.plan.vocab, tokHot));
    this.vars.set('pos', oneHotVar(this.plan.pos, posHot));
  }

  /** Index of the next statement to run. */
  get index(): number {
    return this.next;
  }

  get done(): boolean {
    return this.next >= this.program.statements.length;
  }

  /** Runs the next statement and returns it. Throws RuntimeError (pointing at it) on a run-time problem. */
  step(): Statement {
    if (this.signal?.aborted) throw new CancelledError();
    const stmt = this.program.statements[this.next];
    if (!stmt) throw new RuntimeError('the program has already finished', undefined, this.program.file);
    try {
      this.exec(stmt);
    } catch (err) {
      if (err instanceof RuntimeError && err.statement) throw err;
      if (err instanceof UserError) {
        const detail = err instanceof RuntimeError ? err.detail : 'detail' in err ? String(err.detail) : err.message;
        throw new RuntimeError(detail, stmt, this.program.file);
      }
      throw err;
    }
    this.next++;
    return stmt;
  }

  runToEnd(): RunResult {
    while (!this.done) this.step();
    return this.result();
  }

  value(name: string): VariableValue | undefined {
    const v = this.vars.get(name);
    return v ? { basis: v.basis, n: v.n, data: v.data } : undefined;
  }

  selector(name: string): SelectorValue | undefined {
    const v = this.selectors.get(name);
    const pending = this.pendingScores.get(name);
    if (v && pending) {
      // Fill in the scores of later keys, which the run itself never needs.
      this.pendingScores.delete(name);
      this.select(pending, v.scores, 'rest');
    }
    return v;
  }

  /** n x n attention weights of an aggregate (row i: weights over keys j <= i). */
  attention(aggregateName: string): Float64Array | undefined {
    return this.weights.get(aggregateName);
  }

  /** The basis of any variable of the program, computed yet or not (undefined for selectors). */
  basisOf(name: string): Basis | undefined {
    return this.plan.bases.get(name);
  }

  /** Names of the variables computed so far, in order (token and pos first). */
  variables(): string[] {
    return [...this.vars.keys()];
  }

  result(): RunResult {
    if (!this.final) {
      throw new RuntimeError(
        this.done ? 'the program ended without a prediction' : 'the run has not reached the prediction yet',
        undefined,
        this.program.file,
      );
    }
    return this.final;
  }

  private need(name: string): Var {
    const v = this.vars.get(name);
    if (!v) throw new UserError(`'${name}' has no value`);
    return v;
  }

  private exec(stmt: Statement): void {
    switch (stmt.kind) {
      case 'select': {
        const scores = new Float64Array(this.n * this.n);
        this.select(stmt, scores, 'causal');
        this.selectors.set(stmt.name, { n: this.n, scores });
        this.pendingScores.set(stmt.name, stmt);
        return;
      }
      case 'aggregate':
        return this.aggregate(stmt);
      case 'elementwise':
        return this.elementwise(stmt);
      case 'project':
        return this.project(stmt);
      case 'prediction':
        return this.predict(stmt);
    }
  }

  /**
   * Scores of a select into S (n x n). Only the causal part (keys j <= i) is needed by aggregates, so a run computes
   * that (`part` 'causal'); the rest is filled on demand when the scores are inspected (`part` 'rest').
   */
  private select(stmt: SelectStatement, S: Float64Array, part: 'causal' | 'rest'): void {
    const n = this.n;
    const M = this.plan.matrix(stmt);
    const md = M.data;
    const cols = M.cols;
    const k = this.need(stmt.k);
    const q = stmt.q === undefined ? undefined : this.need(stmt.q);
    const lo = (i: number) => (part === 'causal' ? 0 : i + 1);
    const hi = (i: number) => (part === 'causal' ? i + 1 : n);
    if (!q || identicalRows(M)) {
      // Key-only, or every query row alike: score(i, j) = (sum of q(i)) * (row . k(j)).
      const kv = new Float64Array(n);
      const sp = k.hot ? undefined : sparseRows(M);
      for (let j = 0; j < n; j++) kv[j] = k.hot ? md[k.hot[j]] : rowDot(M, sp, 0, k.data, j * cols, k.rowWidth[j]);
      for (let i = 0; i < n; i++) {
        let qs = 1;
        if (q && !q.hot) {
          qs = 0;
          for (let r = 0; r < q.rowWidth[i]; r++) qs += q.data[i * M.rows + r];
        }
        const so = i * n;
        for (let j = lo(i); j < hi(i); j++) S[so + j] = qs * kv[j];
      }
      return;
    }
    if (q.hot && k.hot) {
      const kh = k.hot;
      for (let i = 0; i < n; i++) {
        const ro = q.hot[i] * cols;
        const so = i * n;
        for (let j = lo(i); j < hi(i); j++) S[so + j] = md[ro + kh[j]];
      }
      return;
    }
    if (q.hot) {
      // Projected key values per query row, extended as far as the queries using that row need them.
      const sp = sparseRows(M);
      const byRow = new Map<number, { vals: Float64Array; upto: number }>();
      for (let i = 0; i < n; i++) {
        const r = q.hot[i];
        let row = byRow.get(r);
        if (!row) {
          row = { vals: new Float64Array(n), upto: 0 };
          byRow.set(r, row);
        }
        const end = hi(i);
        for (let j = Math.max(row.upto, lo(i)); j < end; j++) row.vals[j] = rowDot(M, sp, r, k.data, j * cols, k.rowWidth[j]);
        // Later queries with this row need keys up to at least `end` (causal) or from a later start (rest).
        row.upto = Math.max(row.upto, end);
        const so = i * n;
        for (let j = lo(i); j < end; j++) S[so + j] = row.vals[j];
      }
      return;
    }
    // Dense query: QM = q M over the columns the keys can reach.
    const QM = rowsTimes(q.data, n, q.rowWidth, M, k.width);
    for (let i = 0; i < n; i++) {
      const so = i * n;
      const qo = i * cols;
      if (k.hot) for (let j = lo(i); j < hi(i); j++) S[so + j] = QM[qo + k.hot[j]];
      else for (let j = lo(i); j < hi(i); j++) S[so + j] = dot(QM, qo, k.data, j * cols, k.rowWidth[j]);
    }
  }

  private attentionWeights(selectors: string[]): Float64Array {
    const key = selectors.join('+');
    const seen = this.weightsBySum.get(key);
    if (seen) return seen;
    const n = this.n;
    const W = new Float64Array(n * n);
    if (selectors.length === 0) {
      for (let i = 0; i < n; i++) W.fill(1 / (i + 1), i * n, i * n + i + 1);
    } else {
      const scores = selectors.map((s) => {
        const v = this.selectors.get(s);
        if (!v) throw new UserError(`selector '${s}' has no value`);
        return v.scores;
      });
      const dHead = this.program.header.dHead;
      const scale = dHead !== undefined ? 1 / Math.sqrt(dHead) : 1;
      const first = scores[0];
      for (let i = 0; i < n; i++) {
        const o = i * n;
        // Sum the selectors' causal scores, then scale.
        for (let j = 0; j <= i; j++) W[o + j] = first[o + j];
        for (let t = 1; t < scores.length; t++) {
          const s = scores[t];
          for (let j = 0; j <= i; j++) W[o + j] += s[o + j];
        }
        let max = -Infinity;
        for (let j = 0; j <= i; j++) {
          const z = W[o + j] * scale;
          if (!Number.isFinite(z)) {
            throw new UserError(`the attention score of query ${i} on key ${j} is ${z} (check the op matrices)`);
          }
          W[o + j] = z;
          if (z > max) max = z;
        }
        let sum = 0;
        for (let j = 0; j <= i; j++) {
          const d = W[o + j] - max;
          // Weights below e^-50 (~2e-22) are dropped: far below float32 resolution of the sums they join, and
          // keeping them breeds subnormal numbers that slow every later product ~100x. Dropping them also lets
          // hard (1e4-scaled) attention come out exactly one-hot, which later statements exploit.
          const e = d < -50 ? 0 : Math.exp(d);
          W[o + j] = e;
          sum += e;
        }
        for (let j = 0; j <= i; j++) W[o + j] /= sum;
      }
    }
    this.weightsBySum.set(key, W);
    return W;
  }

  private aggregate(stmt: Statement & { kind: 'aggregate' }): void {
    const n = this.n;
    const W = this.attentionWeights(stmt.selectors);
    this.weights.set(stmt.name, W);
    const v = this.need(stmt.v);
    const size = v.basis.size;
    const out = new Float64Array(n * size);
    if (stmt.selectors.length === 0 && !v.hot) {
      // Uniform attention is a running mean: O(n * size) instead of O(n^2 * size).
      const acc = new Float64Array(size);
      for (let i = 0; i < n; i++) {
        const vo = i * size;
        const width = v.rowWidth[i];
        for (let c = 0; c < width; c++) acc[c] += v.data[vo + c];
        const oo = i * size;
        for (let c = 0; c < size; c++) out[oo + c] = acc[c] / (i + 1);
      }
      this.setVar(stmt.name, v.basis, out);
      return;
    }
    for (let i = 0; i < n; i++) {
      const o = i * n;
      const oo = i * size;
      if (v.hot) {
        for (let j = 0; j <= i; j++) out[oo + v.hot[j]] += W[o + j];
      } else {
        for (let j = 0; j <= i; j++) {
          const w = W[o + j];
          if (w === 0) continue;
          const vo = j * size;
          const width = v.rowWidth[j];
          for (let c = 0; c < width; c++) out[oo + c] += w * v.data[vo + c];
        }
      }
    }
    this.setVar(stmt.name, v.basis, out);
  }

  private elementwise(stmt: Statement & { kind: 'elementwise' }): void {
    const n = this.n;
    const basis = this.plan.basis(stmt.name);
    const inputs = stmt.inputs.map((x) => this.need(x));
    const fn = stmt.fn;
    let data: Float64Array;
    switch (fn.name) {
      case 'erase':
        data = new Float64Array(n).fill(1);
        break;
      case 'keep_one': {
        const x = inputs[fn.index];
        this.vars.set(stmt.name, { ...x });
        return;
      }
      case 'cartesian':
        data = applyCartesian(inputs, basis, n);
        break;
      case 'mlp': {
        const mlp = this.program.mlps.get(fn.ref);
        if (!mlp) throw new UserError(`opaque MLP weights '${fn.ref}' are missing`);
        data = applyMlp(mlp, inputs, n);
        break;
      }
      case 'expr': {
        const map = this.plan.map(stmt);
        const ctx: MapCtx = { vars: this.vars, i: 0 };
        const boolean = basis.size === 2;
        data = new Float64Array(n * basis.size);
        for (let i = 0; i < n; i++) {
          ctx.i = i;
          const v = map.f(ctx);
          if (!Number.isFinite(v)) throw new UserError(`the map gives ${v} at position ${i}`);
          if (boolean) data[i * 2 + (v !== 0 ? 1 : 0)] = 1;
          else data[i] = v;
        }
        break;
      }
      default:
        data = applyUnary(fn, inputs[0], basis, n);
    }
    this.setVar(stmt.name, basis, data);
  }

  private project(stmt: ProjectStatement): void {
    const n = this.n;
    const M = this.plan.matrix(stmt);
    const V = M.cols;
    const out = new Float64Array(n * V);
    if (stmt.inp === undefined) {
      for (let i = 0; i < n; i++) for (let c = 0; c < V; c++) out[i * V + c] = M.data[c];
    } else {
      const x = this.need(stmt.inp);
      if (x.hot) {
        for (let i = 0; i < n; i++) {
          const ro = x.hot[i] * V;
          for (let c = 0; c < V; c++) out[i * V + c] = M.data[ro + c];
        }
      } else {
        out.set(rowsTimes(x.data, n, x.rowWidth, M, V));
      }
    }
    this.setVar(stmt.name, this.plan.vocab, out, false);
  }

  private predict(stmt: Statement & { kind: 'prediction' }): void {
    const n = this.n;
    const vocab = this.program.header.vocab;
    const V = vocab.length;
    const logits = new Float64Array(n * V);
    for (const t of stmt.terms) {
      const l = this.need(t).data;
      for (let c = 0; c < logits.length; c++) logits[c] += l[c];
    }
    const probs = new Float64Array(n * V);
    const prediction: (string | string[])[] = [];
    const sigmoid = this.program.header.output === 'sigmoid';
    for (let i = 0; i < n; i++) {
      const o = i * V;
      for (let c = 0; c < V; c++) {
        if (!Number.isFinite(logits[o + c])) {
          throw new UserError(`logit of '${vocab[c]}' at position ${i} is ${logits[o + c]}`);
        }
      }
      if (sigmoid) {
        const chosen: string[] = [];
        for (let c = 0; c < V; c++) {
          const z = logits[o + c];
          probs[o + c] = 1 / (1 + Math.exp(-z));
          if (z > 0) chosen.push(vocab[c]);
        }
        prediction.push(chosen);
      } else {
        let best = 0;
        for (let c = 1; c < V; c++) if (logits[o + c] > logits[o + best]) best = c;
        const max = logits[o + best];
        let sum = 0;
        for (let c = 0; c < V; c++) {
          const e = Math.exp(logits[o + c] - max);
          probs[o + c] = e;
          sum += e;
        }
        for (let c = 0; c < V; c++) probs[o + c] /= sum;
        prediction.push(vocab[best]);
      }
    }
    this.setVar(stmt.name, this.plan.vocab, probs, false);
    this.final = { tokens: this.tokens.map((t) => vocab[t]), logits, prediction };
  }

  private setVar(name: string, basis: Basis, data: Float64Array, detect = true): void {
    const hot = detect ? detectHot(data, this.n, basis.size) : undefined;
    const rowWidth = rowWidths(data, this.n, basis.size);
    this.vars.set(name, { basis, n: this.n, data, rowWidth, width: maxOf(rowWidth), ...(hot ? { hot } : {}) });
  }
}

function checkIds(program: Program, ids: number[]): number[] {
  const V = program.header.vocab.length;
  if (ids.length === 0) throw new RuntimeError('the input is empty', undefined, program.file);
  ids.forEach((id, p) => {
    if (!Number.isInteger(id) || id < 0 || id >= V) {
      throw new RuntimeError(
        `input id ${id} at position ${p} is not a token id (0..${V - 1})`,
        firstReader(program, 'token'),
        program.file,
      );
    }
  });
  return ids.slice();
}

function dot(a: ArrayLike<number>, ao: number, b: ArrayLike<number>, bo: number, len: number): number {
  let s = 0;
  for (let c = 0; c < len; c++) {
    const x = b[bo + c];
    if (x !== 0) s += a[ao + c] * x;
  }
  return s;
}

/**
 * X (n x M.rows) times M, reading only the first rowWidth[i] columns of row i of X and computing only the first
 * `colWidth` output columns; zero entries of X (and of a sparse M) are skipped.
 */
function rowsTimes(x: Float64Array, n: number, rowWidth: Int32Array, M: Matrix, colWidth: number): Float64Array {
  const r = M.rows;
  const cols = M.cols;
  const m = M.data;
  const sp = sparseRows(M);
  const out = new Float64Array(n * cols);
  for (let i = 0; i < n; i++) {
    const oo = i * cols;
    const width = rowWidth[i];
    for (let a = 0; a < width; a++) {
      const w = x[i * r + a];
      if (w === 0) continue;
      if (sp) {
        for (let e = sp.start[a]; e < sp.start[a + 1]; e++) {
          const c = sp.col[e];
          if (c >= colWidth) break;
          out[oo + c] += w * sp.val[e];
        }
      } else {
        const mo = a * cols;
        for (let c = 0; c < colWidth; c++) out[oo + c] += w * m[mo + c];
      }
    }
  }
  return out;
}

export function runProgram(program: Program, input: string | number[], options: ExecutionOptions = {}): RunResult {
  return new Execution(program, input, options).runToEnd();
}

/**
 * Runs many inputs (token ids) through one program, building bases, op matrices and maps once. Throws the first
 * RuntimeError (e.g. a sequence longer than the position range).
 */
export function runBatch(program: Program, inputs: number[][], options: ExecutionOptions = {}): RunResult[] {
  const plan = new Plan(program);
  return inputs.map((ids) => new Execution(program, ids, { ...options, plan }).runToEnd());
}
