// Hover text: what a statement computes, in words, with its basis and provenance. Kept free of I/O so it answers
// in well under a millisecond; richer sections (heatmaps) plug in through registerHoverSection.
import type { Basis, ElementwiseFn, Op, Provenance, Statement } from '../program/types';
import { COUNT_DIFF_RANGE } from '../program/bases';
import type { BuildResult, MatrixInfo, StatementInfo } from '../language/build';
import { describePath } from '../program/provenance';
import { exprToString } from '../program/print';

export interface HoverContext {
  /** The statement hovered (or whose name is hovered). */
  info: StatementInfo;
  result: BuildResult;
  /** Absolute path of the document, when it is a file. */
  file?: string;
}

/** Extra markdown for a statement's hover (e.g. the extension's heatmap images); undefined to add nothing. */
export type HoverSection = (ctx: HoverContext) => string | undefined;

const sections: HoverSection[] = [];

/** Adds a section appended to every statement hover (in registration order). */
export function registerHoverSection(section: HoverSection): () => void {
  sections.push(section);
  return () => {
    const i = sections.indexOf(section);
    if (i >= 0) sections.splice(i, 1);
  };
}

function code(s: string): string {
  return `\`${s.replace(/`/g, "'")}\``;
}

export function describeBasis(b: Basis | undefined): string {
  if (!b) return 'unknown (an input has no known basis yet)';
  const shown = b.labels.slice(0, 10).join(' ');
  const more = b.size > 10 ? ' …' : '';
  const kind: Record<Basis['kind'], string> = {
    token: 'token basis',
    pos: 'position basis',
    feature: 'feature basis',
    product: 'product basis',
    residual: 'residual stream (d_model)',
    numeric: 'one number',
  };
  return `${kind[b.kind]}, size ${b.size}${b.kind === 'numeric' ? '' : ` (${code(shown + more)})`}`;
}

export function describeOp(op: Op, matrices: Map<string, MatrixInfo>, rowsWhat: string, colsWhat: string): string {
  switch (op.kind) {
    case 'predicate':
      return `predicate ${code(exprToString(op.expr))}: score ${op.scale} where it holds, 0 elsewhere`;
    case 'primitive':
      if (op.name === 'uniform') return 'uniform: all scores 0 (no preference)';
      return op.name === 'first'
        ? `first: scores favouring the earliest ${colsWhat} (scale ${op.scale})`
        : `last: scores favouring the latest ${colsWhat} (scale ${op.scale})`;
    case 'matrix': {
      const m = matrices.get(op.ref);
      const shape = m?.rows !== undefined ? `${m.rows}x${m.cols}` : 'shape unknown';
      return `matrix ${code(op.ref)} (${shape}${m?.sidecar ? ', in the weights file' : ''}): rows = ${rowsWhat}, columns = ${colsWhat}`;
    }
  }
}

function describeFn(fn: ElementwiseFn, inputs: string[]): string {
  const x = inputs.map(code).join(', ');
  switch (fn.name) {
    case 'harden':
      return `one-hot of the largest entry of ${x} at each position`;
    case 'sharpen':
      return `${x} raised to the power ${fn.power} and renormalised (sharper distribution)`;
    case 'exists':
      return `whether entry ${fn.index} of ${x} exceeds 0.1 (2 features: yes, no)`;
    case 'forall':
      return `whether a single entry of ${x} exceeds ${fn.threshold} (one feature per entry, plus "mixed")`;
    case 'equal':
      return `whether entries ${fn.indices.join(', ')} of ${x} are all equal (within 0.01)`;
    case 'balance':
      return `balance of entries ${fn.which === '01' ? '1 vs 0' : '3 vs 2'} of ${x} (p=${fn.p}, c=${fn.c}): 3 features`;
    case 'diff':
      return `bin of entry ${fn.i} minus entry ${fn.j} of ${x} (11 bins plus a "both small" flag)`;
    case 'count_diff':
      return `entry ${fn.i} minus entry ${fn.j} of ${x} in units of entry ${fn.by} (a count difference, e.g. bracket depth), times ${fn.scale}, rounded: one-hot over ${-COUNT_DIFF_RANGE}..${COUNT_DIFF_RANGE} plus "no ref"`;
    case 'erase':
      return `a constant (erases ${x})`;
    case 'cartesian':
      return `joint one-hot of ${x} (Cartesian product)`;
    case 'keep_one':
      return `input ${fn.index} of ${x}, unchanged`;
    case 'mlp':
      return `the model's MLP applied exactly to ${x} (opaque; weights ${code(fn.ref)} in the weights file)`;
    case 'expr':
      return `${code(exprToString(fn.expr))} at each position`;
  }
}

export function describeStatement(s: Statement, result: BuildResult): string {
  const m = result.matrices;
  switch (s.kind) {
    case 'select': {
      const q = s.q !== undefined ? `query ${code(s.q)}` : 'no query (key-only)';
      let text = `**select** ${code(s.name)}: attention scores of each position i against earlier positions j, from ${q} and key ${code(s.k)}.\n\nOp: ${describeOp(s.op, m, s.q !== undefined ? `query ${s.q}` : 'one row', `key ${s.k}`)}`;
      if (s.specialOp) text += `\n\nRows of special query tokens: ${describeOp(s.specialOp, m, `query ${s.q}`, `key ${s.k}`)}`;
      return `${text}\n\nA selector (n × n scores), not a variable: use it in ${code('aggregate(s=...)')}.`;
    }
    case 'aggregate': {
      const how = s.selectors.length === 0 ? 'uniformly' : `by the softmax of ${s.selectors.map(code).join(' + ')}`;
      return `**aggregate** ${code(s.name)}: each position averages ${code(s.v)} over positions j ≤ i, weighted ${how}.`;
    }
    case 'elementwise':
      return `**element-wise** ${code(s.name)}: ${describeFn(s.fn, s.inputs)}.`;
    case 'project': {
      const from = s.inp !== undefined ? `${code(s.inp)} times the op matrix` : 'a constant (bias)';
      let text = `**project** ${code(s.name)}: logits over the vocabulary from ${from}.\n\nOp: ${describeOp(s.op, m, s.inp !== undefined ? `input ${s.inp}` : 'one row', 'output tokens')}`;
      if (s.specialOp) text += `\n\nRows of special input tokens: ${describeOp(s.specialOp, m, `input ${s.inp}`, 'output tokens')}`;
      return text;
    }
    case 'prediction':
      return `**prediction**: ${s.fn} of ${s.terms.map(code).join(' + ')}; the decision is ${s.fn === 'softmax' ? 'the argmax token' : 'every token with logit > 0'} at each position.`;
  }
}

export function describeProvenance(p: Provenance): string {
  const where = p.mlp ? `layer ${p.layer} MLP` : p.head !== null ? `layer ${p.layer} head ${p.head}` : `layer ${p.layer}`;
  const lines = [`**From** ${where}`];
  const names: Record<string, string> = { q: 'query', k: 'key', v: 'value', input: 'input' };
  for (const [f, path] of Object.entries(p.paths)) {
    if (path !== undefined) lines.push(`- ${names[f]}: ${describePath(path)} (${code(path)})`);
  }
  if (p.neurons && p.neurons.length > 0) {
    lines.push(`- neurons: ${p.neurons.map((n) => (n.score !== undefined ? `${n.index} (${n.score})` : String(n.index))).join(', ')}`);
  }
  if (p.dims && p.dims.length > 0) {
    const scores = p.dimScores?.length === p.dims.length ? p.dimScores : undefined;
    const more = p.dimsMore ? ` and ${p.dimsMore} more (the report's \`primitives.heads\` lists them)` : '';
    lines.push(`- head dimensions: ${p.dims.map((d, i) => (scores ? `${d} (${scores[i]})` : String(d))).join(', ')}${more}`);
  }
  return lines.join('\n');
}

export function statementHover(ctx: HoverContext): string {
  const { info, result } = ctx;
  const parts = [describeStatement(info.statement, result)];
  if (info.category === 'value') parts.push(`Basis: ${describeBasis(info.basis)}`);
  if (info.category === 'logits') parts.push(`Logits over the vocabulary (${result.partial.header.vocab.length} tokens)`);
  if (info.statement.provenance) parts.push(describeProvenance(info.statement.provenance));
  for (const section of sections) {
    const extra = section(ctx);
    if (extra) parts.push(extra);
  }
  return parts.join('\n\n---\n\n');
}

export function matrixHover(m: MatrixInfo): string {
  const shape = m.rows !== undefined ? `${m.rows} × ${m.cols}` : 'shape unknown';
  return `**matrix** ${code(m.name)}: ${shape}, ${m.sidecar ? 'stored in the weights file' : 'inline'}.`;
}

export function builtinHover(name: string, result: BuildResult): string {
  const h = result.partial.header;
  return name === 'token'
    ? `**token**: the input token at each position, one-hot over the vocabulary (${h.vocab.length}: ${code(h.vocab.join(' '))}).`
    : `**pos**: the position index, one-hot over ${h.positions} positions (0..${h.positions - 1}).`;
}

/** Hover for a header line: what the setting means for this program. */
export function headerHover(type: string, result: BuildResult): string | undefined {
  const h = result.partial.header;
  switch (type) {
    case 'VocabDecl': {
      const special = Object.entries(h.special).map(([k, v]) => `${k.toUpperCase()} = ${v}`).join(', ');
      return `**vocab**: ${h.vocab.length} tokens in id order (the token basis and the logits' columns).${special ? ` Special ids: ${special}.` : ''}`;
    }
    case 'PositionsDecl':
      return `**positions**: the position basis has ${h.positions} entries (inputs up to ${h.positions} tokens).`;
    case 'OutputDecl':
      return h.output === 'softmax' ? '**output softmax**: the decision at each position is the argmax token.' : '**output sigmoid**: the decision at each position is every token whose logit is > 0.';
    case 'DHeadDecl':
      return `**d_head**: summed select scores are divided by √${h.dHead ?? '?'} before the softmax, as in the model.`;
    case 'ModelDecl':
      return `**model**: extracted from ${code(h.model?.path ?? '')}${h.model?.sha256 ? ` (model.safetensors sha256 ${code(h.model.sha256)})` : ''}.`;
    case 'WeightsDecl':
      return `**weights**: the sidecar ${code(h.weights ?? '')} holds the matrices declared \`from weights\` and the opaque MLP weights.`;
    case 'ExampleDecl':
      return `**example**: the input used by inlay hints, the Run code lens and \`rasp run\` without --input: ${code(h.example ?? '')}.`;
    case 'TaskDecl':
      return `**task**: ${code(h.task ?? '')}.`;
    case 'ProgramDecl':
      return `**program** ${code(h.name ?? '')}.`;
    default:
      return undefined;
  }
}
