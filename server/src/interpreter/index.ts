// Steppable evaluation of a Program on one input (d-rasp.md section 6). One statement per step(), so the
// debugger can pause anywhere; runToEnd()/runProgram()/runBatch() for everything else.
//
// Speed (kernels.ts): token/pos (and anything that turns out exactly one-hot, e.g. an aggregate whose attention is
// a hard 1e4-scaled pick) carry the index of their hot entry per position, so selects between them look entries
// up and aggregating them adds weights into columns. A select keeps only what its query rows need; an aggregate
// computes its weights one causal row at a time and applies each row at once, by the cheapest exact route.
import type { Basis, Program, Statement, Matrix, SelectStatement, ProjectStatement } from '../program/types';
import { inferBases, posBasis, tokenBasis } from '../program/bases';
import { CancelledError, UserError } from '../util/errors';
import { applyCartesian, applyMlp, applyUnary, type MlpKernel } from './elementwise';
import { compileMap, type Compiled, type MapCtx } from './expr';
import {
  AggregateRows,
  denseVar,
  emptyPaths,
  forgetIfChanged,
  oneHotVar,
  rowsTimes,
  scoreRows,
  SoftmaxRows,
  StoredRows,
  UniformRows,
  type PathCounts,
  type ScoreRows,
  type StoredWeights,
  type Var,
  type WeightRows,
} from './kernels';
import { statementMatrix, UNIT_BASIS } from './ops';

export { opMatrix, specialRows, statementMatrix, UNIT_BASIS } from './ops';

/** Asking for a selector's scores or an aggregate's weights builds an n x n matrix; longer inputs would exhaust
 * memory. */
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
  /** Selector sums (`s1+s2`) that more than one aggregate attends with. */
  readonly sharedSums = new Set<string>();

  constructor(readonly program: Program) {
    this.bases = inferBases(program);
    this.vocab = tokenBasis(program);
    this.pos = posBasis(program);
    const seen = new Set<string>();
    for (const s of program.statements) {
      if (s.kind !== 'aggregate' || s.selectors.length === 0) continue;
      const key = s.selectors.join('+');
      if (seen.has(key)) this.sharedSums.add(key);
      seen.add(key);
    }
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

export interface ExecutionOptions {
  signal?: AbortSignal;
  /** Evaluates opaque MLP lines (default: applyMlp, exact). */
  mlpKernel?: MlpKernel;
}

export class Execution {
  readonly tokens: number[];
  readonly n: number;
  /** How often each fast path served (diagnostics; tests check that every path is exercised). */
  readonly paths: PathCounts = emptyPaths();
  private readonly plan: Plan;
  private readonly program: Program;
  private readonly signal?: AbortSignal;
  private readonly mlpKernel: MlpKernel;
  private next = 0;
  private readonly vars = new Map<string, Var>();
  /** Per select: what its query rows need; full score matrices are built only when asked for. */
  private readonly scores = new Map<string, ScoreRows>();
  private readonly selectors = new Map<string, SelectorValue>();
  /** Per aggregate that ran: its selectors (its weights are rebuilt on demand by attention()). */
  private readonly aggregated = new Map<string, string[]>();
  private readonly weights = new Map<string, Float64Array>();
  /** Weights of selector sums used by several aggregates, shared by them. */
  private readonly weightsBySum = new Map<string, StoredWeights>();
  private final?: RunResult;

  constructor(program: Program, input: string | number[], options: ExecutionOptions & { plan?: Plan } = {}) {
    this.program = program;
    this.plan = options.plan ?? new Plan(program);
    this.signal = options.signal;
    this.mlpKernel = options.mlpKernel ?? applyMlp;
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

  /**
   * Skips the next statement, taking its results from `from`: a run on the same input of a program whose statement
   * `name` computes exactly what this one does (same op, same input values). Lets a search over edited programs
   * (decompile/primitives) re-run only what an edit changed; values are immutable, so they are shared, not copied.
   */
  adopt(from: Execution, name?: string): Statement {
    const stmt = this.program.statements[this.next];
    if (!stmt) throw new RuntimeError('the program has already finished', undefined, this.program.file);
    const src = name ?? stmt.name;
    const v = from.vars.get(src);
    const scores = from.scores.get(src);
    if (!v && !scores) throw new Error(`adopt: '${src}' has no value in the other run`);
    if (v) this.vars.set(stmt.name, v);
    if (scores) this.scores.set(stmt.name, scores);
    if (stmt.kind === 'aggregate') this.aggregated.set(stmt.name, stmt.selectors);
    if (stmt.kind === 'prediction') this.final = from.final;
    this.next++;
    return stmt;
  }

  value(name: string): VariableValue | undefined {
    const v = this.vars.get(name);
    return v ? { basis: v.basis, n: v.n, data: v.data } : undefined;
  }

  /** n x n raw scores of a select that has run (built on first request). */
  selector(name: string): SelectorValue | undefined {
    let v = this.selectors.get(name);
    if (!v) {
      const rows = this.scores.get(name);
      if (!rows) return undefined;
      const n = this.n;
      const scores = new Float64Array(n * n);
      for (let i = 0; i < n; i++) rows.row(i, 0, n, scores, i * n, false);
      v = { n, scores };
      this.selectors.set(name, v);
    }
    return v;
  }

  /** n x n attention weights of an aggregate (row i: weights over keys j <= i), built on first request. */
  attention(aggregateName: string): Float64Array | undefined {
    let W = this.weights.get(aggregateName);
    if (!W) {
      const selectors = this.aggregated.get(aggregateName);
      if (!selectors) return undefined;
      const stored = this.weightsBySum.get(selectors.join('+'));
      if (stored) {
        W = stored.W;
      } else {
        // The same rows the aggregate computed (its inputs are immutable), now kept.
        const n = this.n;
        W = new Float64Array(n * n);
        const rows = this.weightRows(selectors);
        for (let i = 0; i < n; i++) {
          rows.compute(i);
          W.set(rows.w.subarray(0, i + 1), i * n);
        }
      }
      this.weights.set(aggregateName, W);
    }
    return W;
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
        const M = this.plan.matrix(stmt);
        const k = this.need(stmt.k);
        const q = stmt.q === undefined ? undefined : this.need(stmt.q);
        this.scores.set(stmt.name, scoreRows(M, q, k, this.n, this.paths));
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

  /** Row-by-row attention weights of a selector sum (replaying stored weights when a head shares them). */
  private weightRows(selectors: string[], store?: StoredWeights): WeightRows {
    const n = this.n;
    if (selectors.length === 0) return new UniformRows(n);
    const stored = this.weightsBySum.get(selectors.join('+'));
    if (stored) return new StoredRows(stored, n, this.paths);
    const scores = selectors.map((s) => {
      const v = this.scores.get(s);
      if (!v) throw new UserError(`selector '${s}' has no value`);
      return v;
    });
    const dHead = this.program.header.dHead;
    return new SoftmaxRows(scores, dHead !== undefined ? 1 / Math.sqrt(dHead) : 1, n, this.paths, store);
  }

  private aggregate(stmt: Statement & { kind: 'aggregate' }): void {
    const n = this.n;
    const key = stmt.selectors.join('+');
    // A head whose weights feed several aggregates keeps them instead of recomputing the softmax.
    const store =
      stmt.selectors.length > 0 && this.plan.sharedSums.has(key) && !this.weightsBySum.has(key)
        ? { W: new Float64Array(n * n), uniform: new Uint8Array(n) }
        : undefined;
    const rows = this.weightRows(stmt.selectors, store);
    const v = this.need(stmt.v);
    const size = v.basis.size;
    const out = new Float64Array(n * size);
    const agg = new AggregateRows(v, this.paths);
    // Leading rows with uniform attention make the result v's running mean there, which later statements exploit.
    let meanRows = -1;
    for (let i = 0; i < n; i++) {
      rows.compute(i);
      if (!rows.uniform && meanRows < 0) meanRows = i;
      agg.row(i, rows, out, i * size);
    }
    if (store) this.weightsBySum.set(key, store);
    this.aggregated.set(stmt.name, stmt.selectors);
    this.setVar(stmt.name, v.basis, out, true, v, meanRows < 0 ? n : meanRows);
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
        if (!x) throw new UserError(`keep_one ${fn.index} has no such input`);
        this.vars.set(stmt.name, x);
        return;
      }
      case 'cartesian':
        data = applyCartesian(inputs, basis, n);
        break;
      case 'mlp': {
        const mlp = this.program.mlps.get(fn.ref);
        if (!mlp) throw new UserError(`opaque MLP weights '${fn.ref}' are missing`);
        data = this.mlpKernel(mlp, inputs, n);
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

  private setVar(name: string, basis: Basis, data: Float64Array, detect = true, meanOf?: Var, meanRows = 0): void {
    this.vars.set(name, denseVar(basis, data, this.n, detect, meanOf, meanRows));
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
