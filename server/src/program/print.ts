// Program -> .rasp text (and sidecar). The output re-parses to the same program: predicate labels are printed
// from their expressions (so a printed label is always literally true), primitives under their names.
import { access } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../util/errors';
import { writeFileAtomic } from '../model/atomic';
import { serializeSafetensors } from '../model/safetensors';
import { formatAnnotation } from './provenance';
import { sidecarTensors } from './sidecar';
import type { ElementwiseFn, Expr, Matrix, OpaqueMlp, Op, Program, Statement } from './types';

/** Matrices with more entries than this go to the sidecar when one is written. */
export const INLINE_MATRIX_LIMIT = 256;
const DEFAULT_SCALE = 1e4;

const KEYWORDS = new Set([
  'program', 'vocab', 'positions', 'output', 'd_head', 'task', 'model', 'sha256', 'weights', 'example', 'matrix',
  'select', 'aggregate', 'project', 'proj_to_vocab', 'not_converted_proj_to_vocab', 'prediction', 'softmax',
  'sigmoid', 'special_op', 'special_scale', 'bias', 'is',
]);

/** Names must read back as names: identifiers that are not keywords. */
function checkName(name: string, what: string): void {
  if (!/^[_A-Za-z]\w*$/.test(name) || KEYWORDS.has(name) || name === 'token' || name === 'pos') {
    throw new UserError(`cannot print ${what} name '${name}': names are identifiers ([A-Za-z_][A-Za-z0-9_]*) other than keywords, token and pos`);
  }
}

function vocabEntry(t: string): string {
  if (/^<[A-Za-z_][A-Za-z0-9_]*>$/.test(t)) return t;
  if (/^[A-Za-z_]\w*$/.test(t) && !KEYWORDS.has(t)) return t;
  if (/^\d+$/.test(t) && String(Number(t)) === t) return t;
  return JSON.stringify(t);
}

/** Shortest decimal that reads back to the same float32 (for Float32Array data) or float64. */
export function formatNumber(v: number, f32 = false): string {
  if (!Number.isFinite(v)) throw new UserError(`cannot print the non-finite number ${v}`);
  if (Object.is(v, -0)) return '0';
  if (f32) {
    for (let p = 1; p <= 9; p++) {
      const s = String(Number(v.toPrecision(p)));
      if (Math.fround(Number(s)) === v) return s;
    }
  }
  return String(v);
}

const PREC: Record<string, number> = {
  '||': 1, '&&': 2, '==': 3, '!=': 3, '<': 3, '<=': 3, '>': 3, '>=': 3, '+': 4, '-': 4, '*': 5, '/': 5, '%': 5,
};

function precOf(e: Expr): number {
  if (e.kind === 'binary') return PREC[e.op];
  if (e.kind === 'unary' || (e.kind === 'num' && e.value < 0)) return 6;
  return 7;
}

/** Expression text with the fewest parentheses that parse back to the same tree. */
export function exprToString(e: Expr): string {
  switch (e.kind) {
    case 'num':
      return formatNumber(e.value);
    case 'ref':
      return e.name;
    case 'special':
      return e.name;
    case 'token':
      return JSON.stringify(e.text);
    case 'index':
      return `${e.target}[${exprToString(e.key)}]`;
    case 'call':
      return `${e.fn}(${e.args.map(exprToString).join(', ')})`;
    case 'unary': {
      const inner = exprToString(e.arg);
      // Parenthesize non-atoms, and numbers too: `-(3)` must not read back as the number -3.
      return `${e.op}${precOf(e.arg) >= 7 && e.arg.kind !== 'num' ? inner : `(${inner})`}`;
    }
    case 'binary': {
      const p = PREC[e.op];
      // Comparisons do not chain (a chain means `and`), so both sides of one are parenthesized at equal level.
      const leftNeeds = precOf(e.left) < p || (p === 3 && precOf(e.left) === 3);
      const rightNeeds = precOf(e.right) <= p;
      const l = exprToString(e.left);
      const r = exprToString(e.right);
      return `${leftNeeds ? `(${l})` : l}${e.op}${rightNeeds ? `(${r})` : r}`;
    }
  }
}

function opText(op: Op): string {
  switch (op.kind) {
    case 'predicate':
      return `(${exprToString(op.expr)})`;
    case 'primitive': {
      // Keep the paper's spelling when it names the same primitive; anything else prints the name.
      const spellings: Record<string, string[]> = { uniform: ['uniform', 'uniform selection'], first: ['first', 'k is first'], last: ['last', 'k is last'] };
      return `(${spellings[op.name].includes(op.label) ? op.label : op.name})`;
    }
    case 'matrix':
      return /^[A-Za-z]$/.test(op.ref) ? `\\circled{${op.ref}}` : op.ref;
  }
}

function scaleOf(op: Op | undefined): number | undefined {
  return op && op.kind !== 'matrix' ? op.scale : undefined;
}

function opArgs(op: Op, specialOp: Op | undefined): string {
  let s = `op=${opText(op)}`;
  if (specialOp) s += `,\n\t\tspecial_op=${opText(specialOp)}`;
  const scale = scaleOf(op);
  const special = scaleOf(specialOp);
  if (scale !== undefined && scale !== DEFAULT_SCALE) s += `, scale=${formatNumber(scale)}`;
  if (special !== undefined && special !== (scale ?? DEFAULT_SCALE)) s += `, special_scale=${formatNumber(special)}`;
  return s;
}

function fnText(fn: ElementwiseFn, inputs: string[]): string {
  const x = inputs.join(', ');
  switch (fn.name) {
    case 'harden':
      return `harden(${x})`;
    case 'sharpen':
      return `sharpen(${x}, ${formatNumber(fn.power)})`;
    case 'exists':
      return `is_${fn.index}_exists(${x})`;
    case 'forall':
      return `is_pure(${x}, ${formatNumber(fn.threshold)})`;
    case 'equal':
      // The original generator has no name for `equal` (it crashes on it); we print it as is_uniform.
      return `is_uniform(${x}, ${fn.indices.join(', ')})`;
    case 'balance':
      return `is_${fn.which}_balance(${x}, p=${formatNumber(fn.p)}, c=${formatNumber(fn.c)})`;
    case 'diff':
      return fn.i < 10 && fn.j < 10 ? `diff_${fn.i}${fn.j}(${x})` : `diff_${fn.i}_${fn.j}(${x})`;
    case 'count_diff': {
      const ij = fn.i < 10 && fn.j < 10 ? `${fn.i}${fn.j}` : `${fn.i}_${fn.j}`;
      return `count_diff_${ij}(${x}, by=${fn.by}, scale=${formatNumber(fn.scale)})`;
    }
    case 'erase':
      return `erase(${x})`;
    case 'cartesian':
      return `Cartesian_product(${x})`;
    case 'keep_one':
      return `keep_one(${x}, index=${fn.index})`;
    case 'mlp':
      return inputs.length === 1 ? `element_wise_op(${x})` : `mlp(${inputs.join('+')})`;
    case 'expr':
      return exprToString(fn.expr);
  }
}

function statementText(s: Statement): string {
  let body: string;
  let sep = ' \t  ';
  switch (s.kind) {
    case 'select': {
      const q = s.q !== undefined ? `q=${s.q}, ` : '';
      // A matrix named after the line is the original (unreplaced) op: printed without op=.
      const op = s.op.kind === 'matrix' && s.op.ref === s.name && !s.specialOp ? '' : `, ${opArgs(s.op, s.specialOp)}`;
      body = `${s.name} = select(${q}k=${s.k}${op})`;
      sep = '\t';
      break;
    }
    case 'aggregate':
      body = `${s.name} = aggregate(s=${s.selectors.length === 0 ? '[]' : s.selectors.join('+')}, v=${s.v})`;
      break;
    case 'elementwise':
      body = `${s.name} = ${fnText(s.fn, s.inputs)}`;
      break;
    case 'project':
      if (s.op.kind === 'matrix' && s.op.ref === s.name && !s.specialOp) body = `${s.name} = proj_to_vocab(${s.inp ?? 'bias'})`;
      else body = `${s.name} = project(${s.inp !== undefined ? `inp=${s.inp}, ` : ''}${opArgs(s.op, s.specialOp)})`;
      sep = '\t';
      break;
    case 'prediction':
      body = `prediction = ${s.fn}(${s.terms.join('+\n\t\t\t')})`;
      break;
  }
  return s.provenance ? `${body}${sep}${formatAnnotation(s.provenance)}` : body;
}

function matrixText(name: string, m: Matrix): string {
  const f32 = m.data instanceof Float32Array;
  const rows: string[] = [];
  for (let r = 0; r < m.rows; r++) {
    const vals: string[] = [];
    for (let c = 0; c < m.cols; c++) vals.push(formatNumber(m.data[r * m.cols + c], f32));
    rows.push(`  [${vals.join(', ')}]`);
  }
  return `matrix ${name}[${m.rows}, ${m.cols}] = [\n${rows.join(',\n')}\n]`;
}

function isInline(m: Matrix, sidecar: boolean): boolean {
  return !sidecar || m.rows * m.cols <= INLINE_MATRIX_LIMIT;
}

function usesSidecar(program: Program): boolean {
  return program.header.weights !== undefined && ([...program.matrices.values()].some((m) => !isInline(m, true)) || program.statements.some((s) => s.kind === 'elementwise' && s.fn.name === 'mlp'));
}

/**
 * The program's text. Matrices are inline unless the header names a weights file and they are large (those are
 * declared `from weights`). Opaque MLP weights always live in the sidecar.
 */
export function printProgram(program: Program): string {
  for (const s of program.statements) if (s.kind !== 'prediction') checkName(s.name, 'statement');
  for (const name of program.matrices.keys()) checkName(name, 'matrix');
  const h = program.header;
  const sidecar = h.weights !== undefined;
  const lines: string[] = [];
  if (h.name !== undefined) lines.push(`program ${JSON.stringify(h.name)}`);
  lines.push(`vocab [${h.vocab.map(vocabEntry).join(', ')}]`);
  lines.push(`positions ${h.positions}`);
  lines.push(`output ${h.output}`);
  if (h.dHead !== undefined) lines.push(`d_head ${h.dHead}`);
  if (h.task !== undefined) lines.push(`task ${JSON.stringify(h.task)}`);
  if (h.model !== undefined) lines.push(`model ${JSON.stringify(h.model.path)}${h.model.sha256 ? ` sha256 ${JSON.stringify(h.model.sha256)}` : ''}`);
  if (h.weights !== undefined) lines.push(`weights ${JSON.stringify(h.weights)}`);
  if (h.example !== undefined) lines.push(`example ${JSON.stringify(h.example)}`);
  if (program.matrices.size > 0) lines.push('');
  for (const [name, m] of program.matrices) {
    lines.push(isInline(m, sidecar) ? matrixText(name, m) : `matrix ${name}[${m.rows}, ${m.cols}] from weights`);
  }
  lines.push('');
  for (const s of program.statements) lines.push(statementText(s));
  return `${lines.join('\n')}\n`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes `<raspPath>` and, when needed (large matrices or opaque MLPs), the sidecar `<name>.weights.safetensors`
 * beside it; both atomically, refusing to overwrite existing files unless `force`.
 */
export async function writeProgramFiles(program: Program, raspPath: string, options: { force?: boolean } = {}): Promise<{ rasp: string; sidecar?: string }> {
  const needsSidecar = [...program.matrices.values()].some((m) => m.rows * m.cols > INLINE_MATRIX_LIMIT) || program.statements.some((s) => s.kind === 'elementwise' && s.fn.name === 'mlp');
  const sidecarName = program.header.weights ?? `${basename(raspPath).replace(/\.rasp$/, '')}.weights.safetensors`;
  // A header naming a weights file that is not written would make the program unloadable.
  const { weights: _unused, ...withoutWeights } = program.header;
  const header = needsSidecar ? { ...program.header, weights: sidecarName } : withoutWeights;
  const out: Program = { ...program, header };
  const sidecarPath = needsSidecar ? join(dirname(raspPath), sidecarName) : undefined;
  if (!options.force) {
    for (const p of [raspPath, sidecarPath]) if (p && (await exists(p))) throw new UserError('already exists (use --force to overwrite)', p);
  }
  const text = printProgram(out);
  if (sidecarPath) {
    const matrices = new Map<string, Matrix>();
    if (usesSidecar(out)) for (const [name, m] of out.matrices) if (!isInline(m, true)) matrices.set(name, m);
    const mlps = new Map<string, OpaqueMlp>();
    for (const s of out.statements) {
      if (s.kind !== 'elementwise' || s.fn.name !== 'mlp') continue;
      const mlp = out.mlps.get(s.fn.ref);
      if (!mlp) throw new UserError(`opaque MLP '${s.fn.ref}' of line ${s.name} has no weights in the program`);
      // Stored under the line name: that is the ref the parser gives the line back.
      mlps.set(s.name, mlp);
    }
    await writeFileAtomic(sidecarPath, serializeSafetensors(sidecarTensors(matrices, mlps), { generator: 'rasp-decompiler' }));
  }
  await writeFileAtomic(raspPath, new TextEncoder().encode(text));
  return { rasp: raspPath, ...(sidecarPath ? { sidecar: sidecarPath } : {}) };
}
