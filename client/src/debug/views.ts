// What the paused program looks like to a user: per-position variables, selector score and attention weight
// matrices, the prediction, and (with a model attached) the model's own attention and prediction. Shared by the
// Variables view and by evaluate, so a watch expression reads exactly what the tree shows. No vscode imports.
import type { AggregateStatement, Statement } from '../../../server/src/program/types';
import type { RunResult } from '../../../server/src/interpreter/index';
import type { DebugValue, EvalScope, Table } from './expression';
import type { ModelActivations } from './model';
import type { RaspRuntime } from './runtime';

/** A number as shown in the debugger: short, exact for integers. */
export function fmt(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (Number.isInteger(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1e5 || a < 1e-4) return x.toExponential(3);
  return String(Number(x.toFixed(4)));
}

export function quoteLabel(label: string, quoted: boolean): string {
  return quoted ? JSON.stringify(label) : label;
}

/** Top entries of a distribution, largest first, e.g. `"a" 0.67, "b" 0.33`. */
export function topEntries(labels: readonly string[], values: ArrayLike<number>, quoted: boolean, k = 3): string {
  if (values.length === 1) return fmt(values[0]);
  const order = Array.from({ length: values.length }, (_, i) => i)
    .filter((i) => Math.abs(values[i]) > 1e-9)
    .sort((a, b) => values[b] - values[a]);
  if (order.length === 0) return '0';
  const shown = order.slice(0, k).map((i) => `${quoteLabel(labels[i], quoted)} ${fmt(values[i])}`);
  return order.length > k ? `${shown.join(', ')}, … (${order.length - k} more)` : shown.join(', ');
}

export function argmax(values: ArrayLike<number>, from = 0, to = values.length): number {
  let best = from;
  for (let i = from + 1; i < to; i++) if (values[i] > values[best]) best = i;
  return best - from;
}

function softmaxRow(logits: ArrayLike<number>, offset: number, size: number): number[] {
  let m = -Infinity;
  for (let c = 0; c < size; c++) m = Math.max(m, logits[offset + c]);
  const e = Array.from({ length: size }, (_, c) => Math.exp(logits[offset + c] - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

/** Probabilities of a logits matrix (n x V): softmax per position, or a sigmoid per entry for BCE programs. */
export function probabilities(logits: ArrayLike<number>, n: number, v: number, output: 'softmax' | 'sigmoid'): Float64Array {
  const out = new Float64Array(n * v);
  for (let i = 0; i < n; i++) {
    if (output === 'softmax') out.set(softmaxRow(logits, i * v, v), i * v);
    else for (let c = 0; c < v; c++) out[i * v + c] = 1 / (1 + Math.exp(-logits[i * v + c]));
  }
  return out;
}

/** The decision at each position: argmax token (softmax) or the tokens with a positive logit (sigmoid). */
export function decisions(logits: ArrayLike<number>, n: number, vocab: readonly string[], output: 'softmax' | 'sigmoid'): string[] {
  const v = vocab.length;
  return Array.from({ length: n }, (_, i) => {
    if (output === 'softmax') return vocab[argmax(logits, i * v, i * v + v)];
    const on = vocab.filter((_, c) => logits[i * v + c] > 0);
    return `{${on.join(' ')}}`;
  });
}

export function decisionText(d: string | string[]): string {
  return Array.isArray(d) ? `{${d.join(' ')}}` : d;
}

/** Largest absolute difference between two n x n attention patterns over the causal entries. */
export function maxCausalDiff(a: ArrayLike<number>, b: ArrayLike<number>, n: number, row?: number): number {
  let m = 0;
  for (let i = row ?? 0; i < (row === undefined ? n : row + 1); i++) {
    for (let j = 0; j <= i; j++) m = Math.max(m, Math.abs(a[i * n + j] - b[i * n + j]));
  }
  return m;
}

/** Attention differences up to this size count as "the same" (the program's 1e4-scaled ops are near-hard). */
export const DIFF_TOLERANCE = 0.01;

/** One entry of the Model scope: a head's real attention next to the program's, for one aggregate line. */
export interface HeadComparison {
  statement: AggregateStatement;
  layer: number;
  head: number;
  model: Float64Array;
  program: Float64Array;
}

export class StateView implements EvalScope {
  constructor(
    readonly runtime: RaspRuntime,
    readonly model?: ModelActivations,
  ) {}

  private get program() {
    return this.runtime.program;
  }

  get vocab(): string[] {
    return this.program.header.vocab;
  }

  get n(): number {
    return this.runtime.execution?.n ?? 0;
  }

  /** `3: "a"` — a position labelled by its input token. */
  positionLabels(): string[] {
    const exec = this.runtime.execution;
    if (!exec) return [];
    return exec.tokens.map((t, i) => `${i}: ${JSON.stringify(this.vocab[t] ?? String(t))}`);
  }

  /** Statements that have run (in row mode including the one whose rows are being revealed). */
  executed(): Statement[] {
    return this.runtime.statements.slice(0, this.runtime.executedCount());
  }

  /** Rows of `stmt` visible now: all, or 0..row while stepping through its rows. */
  visibleRows(stmt: Statement | undefined): number {
    const loc = this.runtime.location;
    if (stmt && loc.row !== undefined && this.runtime.statements[loc.statement] === stmt) return loc.row + 1;
    return this.n;
  }

  /** Names in the Values scope: the inputs, then every value-defining statement that has run. */
  valueNames(): string[] {
    const names = ['token', 'pos'];
    for (const s of this.executed()) {
      if (s.kind !== 'select' && s.kind !== 'prediction') names.push(s.name);
    }
    return names;
  }

  selectStatements(): Statement[] {
    return this.executed().filter((s) => s.kind === 'select');
  }

  aggregateStatements(): AggregateStatement[] {
    return this.executed().filter((s): s is AggregateStatement => s.kind === 'aggregate');
  }

  statementNamed(name: string): Statement | undefined {
    return this.runtime.statements.find((s) => s.name === name);
  }

  variableTable(name: string): Table | undefined {
    const exec = this.runtime.execution;
    if (!exec) return undefined;
    const stmt = this.statementNamed(name);
    if (stmt && !this.executed().includes(stmt)) return undefined;
    const value = exec.value(name);
    if (!value) return undefined;
    return {
      kind: 'table',
      title: name,
      rowLabels: this.positionLabels(),
      colLabels: [...value.basis.labels],
      data: value.data,
      labelledColumns: true,
      quoted: value.basis.kind === 'token',
      visibleRows: this.visibleRows(stmt),
      basisKind: value.basis.kind,
    };
  }

  /** Raw select scores (n x n, before scaling and causal masking). */
  selectorTable(name: string): Table | undefined {
    const exec = this.runtime.execution;
    const stmt = this.statementNamed(name);
    if (!exec || !stmt || stmt.kind !== 'select' || !this.executed().includes(stmt)) return undefined;
    const sel = exec.selector(name);
    if (!sel) return undefined;
    return this.squareTable(name, sel.scores, this.visibleRows(stmt));
  }

  /** Attention weights of an aggregate (n x n, rows sum to 1 over the causal prefix). */
  attentionTable(name: string): Table | undefined {
    const exec = this.runtime.execution;
    const stmt = this.statementNamed(name);
    if (!exec || !stmt || stmt.kind !== 'aggregate' || !this.executed().includes(stmt)) return undefined;
    const w = exec.attention(name);
    if (!w) return undefined;
    return this.squareTable(`attention(${name})`, w, this.visibleRows(stmt));
  }

  squareTable(title: string, data: ArrayLike<number>, visibleRows: number): Table {
    const labels = this.positionLabels();
    return { kind: 'table', title, rowLabels: labels, colLabels: labels, data, labelledColumns: false, causal: true, visibleRows };
  }

  /** Probabilities of the program's prediction, once every statement has run. */
  predictionTable(): Table | undefined {
    const exec = this.runtime.execution;
    const result = this.result();
    if (!exec || !result) return undefined;
    const v = this.vocab.length;
    return {
      kind: 'table',
      title: 'prediction',
      rowLabels: this.positionLabels(),
      colLabels: [...this.vocab],
      data: probabilities(result.logits, exec.n, v, this.program.header.output),
      labelledColumns: true,
      quoted: true,
      rowSummaries: result.prediction.map(decisionText),
    };
  }

  /** The program's result once every statement has run (undefined for a program without a prediction line). */
  result(): RunResult | undefined {
    const exec = this.runtime.execution;
    if (!exec || !exec.done) return undefined;
    try {
      return exec.result();
    } catch {
      return undefined;
    }
  }

  /** The model's real attention pattern next to the program's, for every aggregate that has run. */
  headComparisons(): HeadComparison[] {
    const exec = this.runtime.execution;
    if (!this.model || !exec) return [];
    const out: HeadComparison[] = [];
    for (const stmt of this.aggregateStatements()) {
      const prov = stmt.provenance;
      if (!prov || prov.head === null || prov.mlp) continue;
      const model = this.model.attention(prov.layer, prov.head);
      const program = exec.attention(stmt.name);
      if (!model || !program) continue;
      out.push({ statement: stmt, layer: prov.layer, head: prov.head, model, program });
    }
    return out;
  }

  /** The model's prediction probabilities, with its decisions as row summaries. */
  modelPredictionTable(): Table | undefined {
    if (!this.model) return undefined;
    const n = this.model.n;
    return {
      kind: 'table',
      title: 'model prediction',
      rowLabels: this.positionLabels(),
      colLabels: [...this.vocab],
      data: probabilities(this.model.logits, n, this.vocab.length, this.program.header.output),
      labelledColumns: true,
      quoted: true,
      rowSummaries: decisions(this.model.logits, n, this.vocab, this.program.header.output),
    };
  }

  // ---- evaluate ----
  lookup(name: string): DebugValue | undefined {
    if (name === 'prediction') return this.predictionTable();
    if (name === 'n') return this.runtime.execution ? { kind: 'number', value: this.n } : undefined;
    const stmt = this.statementNamed(name);
    if (stmt?.kind === 'select') return this.selectorTable(name);
    return this.variableTable(name);
  }

  attention(name: string): Table | undefined {
    return this.attentionTable(name);
  }

  names(): string[] {
    const names = [...this.valueNames(), ...this.selectStatements().map((s) => s.name), 'n'];
    if (this.runtime.finished) names.push('prediction');
    return names;
  }
}
