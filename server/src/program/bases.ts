// Basis inference: what each variable's per-position vector means (d-rasp.md 1.2 and 5.1). The interpreter, the
// validator and the language server all read bases from here, so shapes are decided in exactly one place.
import { UserError } from '../util/errors';
import type { Basis, ElementwiseFn, Expr, Op, Program, Statement } from './types';

/** A program-level inconsistency found while inferring bases; names the statement so callers can place it. */
export class ProgramError extends UserError {
  constructor(
    /** The problem without the file/line prefix (for diagnostics placed at the statement). */
    readonly detail: string,
    readonly statement?: Statement,
    file?: string,
  ) {
    super(statement ? `line ${statement.line} (${statement.name}): ${detail}` : detail, file);
    this.name = 'ProgramError';
  }
}

/** Largest position range (the position basis has one labelled entry per position). */
export const MAX_POSITIONS = 1_000_000;

/** Largest product basis the Cartesian product may build (d-rasp.md 5.1: the original abandons larger ones). */
export const MAX_PRODUCT_SIZE = 10_000;

/** Edges of the 11 `diff` bins (d-rasp.md 5.1). */
export const DIFF_EDGES: readonly number[] = [
  -1.1, -0.6, -0.467, -0.333, -0.2, -0.067, 0.067, 0.2, 0.333, 0.467, 0.6, 1.1,
];

/** count_diff bins: -R..R (the ends take everything beyond), then the "no reference" flag. */
export const COUNT_DIFF_RANGE = 4;

export function countDiffLabels(): string[] {
  const R = COUNT_DIFF_RANGE;
  const labels: string[] = [];
  for (let k = -R; k <= R; k++) labels.push(k === -R ? `<=${k}` : k === R ? `>=${k}` : String(k));
  labels.push('no ref');
  return labels;
}

export const BOOLEAN_LABELS: readonly string[] = ['false', 'true'];

export function tokenBasis(program: Program): Basis {
  return { kind: 'token', size: program.header.vocab.length, labels: program.header.vocab };
}

const posLabelCache = new Map<number, readonly string[]>();

export function posBasis(program: Program): Basis {
  const p = program.header.positions;
  let labels = posLabelCache.get(p);
  if (!labels) {
    labels = Array.from({ length: p }, (_, i) => String(i));
    posLabelCache.set(p, labels);
  }
  return { kind: 'pos', size: p, labels };
}

function indexLabels(size: number): string[] {
  return Array.from({ length: size }, (_, i) => String(i));
}

/** True when `basis` is the two-entry boolean basis of a hand-written map (entry 1 = true). */
export function isBooleanBasis(basis: Basis): boolean {
  return basis.kind === 'feature' && basis.size === 2 && basis.labels[0] === 'false' && basis.labels[1] === 'true';
}

/** True when an `expr` map yields a boolean (comparison or logical operator at the top). */
export function isBooleanExpr(expr: Expr): boolean {
  if (expr.kind === 'unary') return expr.op === '!';
  if (expr.kind === 'binary') return !['+', '-', '*', '/', '%'].includes(expr.op);
  return false;
}

/** The direct sub-expressions of an expression (an index key, operands, call arguments): one traversal for every walker. */
export function exprChildren(expr: Expr): readonly Expr[] {
  switch (expr.kind) {
    case 'index':
      return [expr.key];
    case 'unary':
      return [expr.arg];
    case 'binary':
      return [expr.left, expr.right];
    case 'call':
      return expr.args;
    default:
      return [];
  }
}

/** Names of variables an expression reads (refs and index targets), excluding the predicate names q,k,inp,out. */
export function exprRefs(expr: Expr, out: Set<string> = new Set()): Set<string> {
  if (expr.kind === 'ref') out.add(expr.name);
  if (expr.kind === 'index') out.add(expr.target);
  for (const child of exprChildren(expr)) exprRefs(child, out);
  return out;
}

/** Functions a hand-written expression may call, with their arity ('n' = one or more). */
export const EXPR_FUNCTIONS: Readonly<Record<string, number | 'n'>> = {
  abs: 1,
  sign: 1,
  floor: 1,
  ceil: 1,
  round: 1,
  sqrt: 1,
  exp: 1,
  log: 1,
  relu: 1,
  pow: 2,
  clamp: 3,
  min: 'n',
  max: 'n',
};

/** Where an expression appears: a select's predicate, a projection's predicate, or an element-wise map. */
export type ExprContext =
  | { kind: 'select'; pair: boolean }
  | { kind: 'project'; hasInput: boolean }
  | { kind: 'map'; bases: Map<string, Basis> };

/** Static checks of an expression: names it may read, token literals, special tokens, functions. */
export function checkExpr(program: Program, stmt: Statement, expr: Expr, ctx: ExprContext): void {
  const fail = (msg: string): never => {
    throw new ProgramError(msg, stmt);
  };
  const walk = (e: Expr): void => {
    switch (e.kind) {
      case 'num':
        if (!Number.isFinite(e.value)) fail(`number ${e.value} is not finite`);
        break;
      case 'ref':
        if (ctx.kind === 'select') {
          if (e.name === 'k' || (e.name === 'q' && ctx.pair)) break;
          fail(
            e.name === 'q'
              ? `a key-only select has no query: its op cannot use q`
              : `a select op can only use q and k, not '${e.name}'`,
          );
        } else if (ctx.kind === 'project') {
          if (e.name === 'out' || (e.name === 'inp' && ctx.hasInput)) break;
          fail(
            e.name === 'inp'
              ? `a bias projection has no input: its op cannot use inp`
              : `a project op can only use inp and out, not '${e.name}'`,
          );
        } else if (!ctx.bases.has(e.name)) {
          fail(`'${e.name}' is not a variable defined earlier`);
        }
        break;
      case 'special': {
        const key = e.name.toLowerCase() as 'bos' | 'sep' | 'eos' | 'pad';
        if (program.header.special[key] === undefined) fail(`${e.name} is not in the vocabulary`);
        break;
      }
      case 'token':
        if (!program.header.vocab.includes(e.text)) fail(`token "${e.text}" is not in the vocabulary`);
        break;
      case 'index': {
        if (ctx.kind !== 'map') fail(`indexing (${e.target}[...]) is only allowed in element-wise maps`);
        const target = ctx.kind === 'map' ? ctx.bases.get(e.target) : undefined;
        if (!target) return fail(`'${e.target}' is not a variable defined earlier`);
        if (e.key.kind === 'token') {
          if (!target.labels.includes(e.key.text)) fail(`'${e.target}' has no entry "${e.key.text}"`);
        } else if (e.key.kind === 'num') {
          if (!Number.isInteger(e.key.value) || e.key.value < 0 || e.key.value >= target.size) {
            fail(`index ${e.key.value} is outside ${e.target}'s basis (0..${target.size - 1})`);
          }
        } else {
          walk(e.key);
        }
        break;
      }
      case 'unary':
      case 'binary':
        exprChildren(e).forEach(walk);
        break;
      case 'call': {
        const arity = EXPR_FUNCTIONS[e.fn];
        if (arity === undefined) fail(`unknown function ${e.fn}() (known: ${Object.keys(EXPR_FUNCTIONS).join(', ')})`);
        if (arity === 'n' ? e.args.length < 1 : e.args.length !== arity) {
          fail(`${e.fn}() takes ${arity === 'n' ? 'one or more' : arity} argument${arity === 1 ? '' : 's'}, got ${e.args.length}`);
        }
        e.args.forEach(walk);
        break;
      }
      default: {
        const never: never = e;
        fail(`unknown expression ${JSON.stringify(never)}`);
      }
    }
  };
  walk(expr);
}

function checkOpExpr(program: Program, stmt: Statement, op: Op | undefined, ctx: ExprContext): void {
  if (!op) return;
  if (op.kind === 'predicate') {
    if (!Number.isFinite(op.scale)) throw new ProgramError(`op scale ${op.scale} is not finite`, stmt);
    checkExpr(program, stmt, op.expr, ctx);
  } else if (op.kind === 'primitive' && !Number.isFinite(op.scale)) {
    throw new ProgramError(`op scale ${op.scale} is not finite`, stmt);
  }
}

function diffLabels(): string[] {
  const labels: string[] = [];
  for (let b = 0; b < DIFF_EDGES.length - 1; b++) labels.push(`[${DIFF_EDGES[b]},${DIFF_EDGES[b + 1]})`);
  labels.push('sum<0.2');
  return labels;
}

function expectInputs(stmt: Statement, fn: ElementwiseFn, inputs: readonly string[], count: number | 'some'): void {
  if (count === 'some') {
    if (inputs.length === 0) throw new ProgramError(`${fn.name} needs at least one input`, stmt);
  } else if (inputs.length !== count) {
    throw new ProgramError(`${fn.name} takes ${count} input${count === 1 ? '' : 's'}, got ${inputs.length}`, stmt);
  }
}

function checkIndex(stmt: Statement, what: string, index: number, size: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= size) {
    throw new ProgramError(`${what} ${index} is outside the input basis (0..${size - 1})`, stmt);
  }
}

function elementwiseBasis(program: Program, stmt: Statement & { kind: 'elementwise' }, inputs: Basis[]): Basis {
  const fn = stmt.fn;
  switch (fn.name) {
    case 'harden':
      expectInputs(stmt, fn, stmt.inputs, 1);
      return inputs[0];
    case 'sharpen':
      expectInputs(stmt, fn, stmt.inputs, 1);
      if (!(fn.power > 0)) throw new ProgramError(`sharpen power must be positive, got ${fn.power}`, stmt);
      return inputs[0];
    case 'exists': {
      expectInputs(stmt, fn, stmt.inputs, 1);
      checkIndex(stmt, 'exists index', fn.index, inputs[0].size);
      const l = inputs[0].labels[fn.index];
      return { kind: 'feature', size: 2, labels: [`has ${l}`, `no ${l}`] };
    }
    case 'forall': {
      expectInputs(stmt, fn, stmt.inputs, 1);
      return { kind: 'feature', size: inputs[0].size + 1, labels: [...inputs[0].labels.map((l) => `all ${l}`), 'mixed'] };
    }
    case 'equal': {
      expectInputs(stmt, fn, stmt.inputs, 1);
      if (fn.indices.length === 0) throw new ProgramError('equal needs at least one index', stmt);
      for (const i of fn.indices) checkIndex(stmt, 'equal index', i, inputs[0].size);
      return { kind: 'feature', size: 2, labels: ['equal', 'unequal'] };
    }
    case 'balance': {
      expectInputs(stmt, fn, stmt.inputs, 1);
      const [lo, hi] = fn.which === '01' ? [0, 1] : [2, 3];
      checkIndex(stmt, `${fn.which} balance index`, hi, inputs[0].size);
      const l = inputs[0].labels;
      return { kind: 'feature', size: 3, labels: [`more ${l[hi]}`, `more ${l[lo]}`, 'rest'] };
    }
    case 'diff':
      expectInputs(stmt, fn, stmt.inputs, 1);
      checkIndex(stmt, 'diff index', fn.i, inputs[0].size);
      checkIndex(stmt, 'diff index', fn.j, inputs[0].size);
      return { kind: 'feature', size: 12, labels: diffLabels() };
    case 'count_diff':
      expectInputs(stmt, fn, stmt.inputs, 1);
      for (const i of [fn.i, fn.j, fn.by]) checkIndex(stmt, 'count_diff index', i, inputs[0].size);
      if (!Number.isFinite(fn.scale) || fn.scale <= 0) throw new ProgramError(`count_diff scale must be a positive number, got ${fn.scale}`, stmt);
      return { kind: 'feature', size: 2 * COUNT_DIFF_RANGE + 2, labels: countDiffLabels() };
    case 'erase':
      expectInputs(stmt, fn, stmt.inputs, 'some');
      return { kind: 'feature', size: 1, labels: ['1'] };
    case 'keep_one':
      expectInputs(stmt, fn, stmt.inputs, 'some');
      if (!Number.isInteger(fn.index) || fn.index < 0 || fn.index >= inputs.length) {
        throw new ProgramError(`keep_one index ${fn.index} is not one of the ${inputs.length} inputs`, stmt);
      }
      return inputs[fn.index];
    case 'cartesian': {
      expectInputs(stmt, fn, stmt.inputs, 'some');
      let size = 1;
      for (const b of inputs) size *= b.size;
      if (size > MAX_PRODUCT_SIZE) {
        throw new ProgramError(
          `Cartesian product of sizes ${inputs.map((b) => b.size).join(' x ')} = ${size} exceeds ${MAX_PRODUCT_SIZE}`,
          stmt,
        );
      }
      // Row-major: the last input varies fastest, labels "a-b".
      let labels: string[] = [''];
      inputs.forEach((b, n) => {
        const next: string[] = [];
        for (const prefix of labels) for (const l of b.labels) next.push(n === 0 ? l : `${prefix}-${l}`);
        labels = next;
      });
      return { kind: 'product', size, labels };
    }
    case 'mlp': {
      expectInputs(stmt, fn, stmt.inputs, 'some');
      const mlp = program.mlps.get(fn.ref);
      if (!mlp) throw new ProgramError(`opaque MLP weights '${fn.ref}' are missing`, stmt);
      const d = mlp.projW.cols;
      if (mlp.inputEmbeddings.length !== inputs.length) {
        throw new ProgramError(
          `MLP '${fn.ref}' has ${mlp.inputEmbeddings.length} input embeddings for ${inputs.length} inputs`,
          stmt,
        );
      }
      mlp.inputEmbeddings.forEach((e, n) => {
        if (e.rows !== inputs[n].size || e.cols !== mlp.fcW.rows) {
          throw new ProgramError(
            `MLP '${fn.ref}' embedding ${n} is ${e.rows}x${e.cols}, expected ${inputs[n].size}x${mlp.fcW.rows} for ${stmt.inputs[n]}`,
            stmt,
          );
        }
      });
      const dIn = mlp.fcW.rows;
      const hidden = mlp.fcW.cols;
      for (const m of [...mlp.inputEmbeddings, mlp.fcW, mlp.projW]) {
        if (m.data.length !== m.rows * m.cols) {
          throw new ProgramError(`MLP '${fn.ref}' has a ${m.rows}x${m.cols} matrix holding ${m.data.length} numbers`, stmt);
        }
      }
      if (
        mlp.lnGamma.length !== dIn ||
        mlp.fcB.length !== hidden ||
        mlp.projW.rows !== hidden ||
        mlp.projB.length !== d ||
        (mlp.constant !== undefined && mlp.constant.length !== dIn)
      ) {
        throw new ProgramError(`MLP '${fn.ref}' weights have inconsistent shapes`, stmt);
      }
      return { kind: 'residual', size: d, labels: indexLabels(d) };
    }
    case 'expr':
      return isBooleanExpr(fn.expr)
        ? { kind: 'feature', size: 2, labels: BOOLEAN_LABELS }
        : { kind: 'numeric', size: 1, labels: ['value'] };
    default: {
      const never: never = fn;
      throw new ProgramError(`unknown element-wise function ${JSON.stringify(never)}`, stmt);
    }
  }
}

/** The op's matrix shape when it names a matrix; used to check shapes at validation time. */
function checkMatrixOp(program: Program, stmt: Statement, op: Op | undefined, rows: number, cols: number): void {
  if (!op || op.kind !== 'matrix') return;
  const m = program.matrices.get(op.ref);
  // A missing matrix is reported when the statement runs (the sidecar may be loaded later).
  if (!m) return;
  if (m.rows !== rows || m.cols !== cols) {
    throw new ProgramError(`matrix ${op.ref} is ${m.rows}x${m.cols}, expected ${rows}x${cols}`, stmt);
  }
}

/**
 * The basis of the variable a statement defines, given the bases of earlier variables; undefined for selects
 * (selectors are not variables). Projections and the prediction live in the vocabulary (token) basis.
 */
export function basisOfStatement(program: Program, stmt: Statement, bases: Map<string, Basis>): Basis | undefined {
  const need = (name: string, role: string): Basis => {
    const b = bases.get(name);
    if (!b) throw new ProgramError(`${role} '${name}' is not a variable defined earlier`, stmt);
    return b;
  };
  const V = program.header.vocab.length;
  switch (stmt.kind) {
    case 'select': {
      const k = need(stmt.k, 'key');
      const q = stmt.q !== undefined ? need(stmt.q, 'query') : undefined;
      checkMatrixOp(program, stmt, stmt.op, q ? q.size : 1, k.size);
      checkOpExpr(program, stmt, stmt.op, { kind: 'select', pair: q !== undefined });
      checkOpExpr(program, stmt, stmt.specialOp, { kind: 'select', pair: q !== undefined });
      if (stmt.specialOp) {
        if (!q || q.kind !== 'token') throw new ProgramError('special_op needs a token-basis query', stmt);
        checkMatrixOp(program, stmt, stmt.specialOp, q.size, k.size);
      }
      return undefined;
    }
    case 'aggregate':
      return need(stmt.v, 'value');
    case 'elementwise': {
      const inputs = stmt.inputs.map((n) => need(n, 'input'));
      if (stmt.fn.name === 'expr') checkExpr(program, stmt, stmt.fn.expr, { kind: 'map', bases });
      return elementwiseBasis(program, stmt, inputs);
    }
    case 'project': {
      const inp = stmt.inp !== undefined ? need(stmt.inp, 'input') : undefined;
      checkMatrixOp(program, stmt, stmt.op, inp ? inp.size : 1, V);
      checkOpExpr(program, stmt, stmt.op, { kind: 'project', hasInput: inp !== undefined });
      checkOpExpr(program, stmt, stmt.specialOp, { kind: 'project', hasInput: inp !== undefined });
      if (stmt.specialOp) {
        if (!inp || inp.kind !== 'token') throw new ProgramError('special_op needs a token-basis input', stmt);
        checkMatrixOp(program, stmt, stmt.specialOp, inp.size, V);
      }
      return tokenBasis(program);
    }
    case 'prediction':
      if (stmt.terms.length === 0) throw new ProgramError('prediction sums no logits', stmt);
      return tokenBasis(program);
    default: {
      const never: never = stmt;
      throw new ProgramError(`unknown statement ${JSON.stringify(never)}`);
    }
  }
}

/**
 * Bases of every defined variable plus `token` and `pos`, in definition order. Throws ProgramError (a UserError)
 * on an inconsistent program: undefined or duplicate names, selectors used as values and vice versa, shape
 * mismatches, a missing or repeated prediction.
 */
export function inferBases(program: Program): Map<string, Basis> {
  const { header } = program;
  if (header.vocab.length === 0) throw new ProgramError('the vocabulary is empty', undefined, program.file);
  if (!Number.isInteger(header.positions) || header.positions < 1) {
    throw new ProgramError(`positions must be a positive integer, got ${header.positions}`, undefined, program.file);
  }
  if (header.positions > MAX_POSITIONS) {
    throw new ProgramError(`positions ${header.positions} is over the limit of ${MAX_POSITIONS}`, undefined, program.file);
  }
  if (header.dHead !== undefined && !(header.dHead > 0)) {
    throw new ProgramError(`d_head must be positive, got ${header.dHead}`, undefined, program.file);
  }
  const bases = new Map<string, Basis>([
    ['token', tokenBasis(program)],
    ['pos', posBasis(program)],
  ]);
  const selectors = new Set<string>();
  const logits = new Set<string>();
  let prediction: Statement | undefined;
  for (const stmt of program.statements) {
    if (bases.has(stmt.name) || selectors.has(stmt.name)) {
      throw new ProgramError(`'${stmt.name}' is already defined`, stmt, program.file);
    }
    // A selector name where a value is expected (or the reverse) gets a specific message.
    const asValue = (name: string | undefined): void => {
      if (name !== undefined && selectors.has(name)) {
        throw new ProgramError(`'${name}' is a selector, not a variable`, stmt, program.file);
      }
    };
    try {
      switch (stmt.kind) {
        case 'select':
          asValue(stmt.q);
          asValue(stmt.k);
          break;
        case 'aggregate':
          asValue(stmt.v);
          for (const s of stmt.selectors) {
            if (!selectors.has(s)) {
              throw new ProgramError(
                bases.has(s) ? `'${s}' is a variable, not a selector` : `selector '${s}' is not defined earlier`,
                stmt,
              );
            }
          }
          break;
        case 'elementwise':
          stmt.inputs.forEach(asValue);
          if (stmt.fn.name === 'expr') exprRefs(stmt.fn.expr).forEach(asValue);
          break;
        case 'project':
          asValue(stmt.inp);
          break;
        case 'prediction':
          if (prediction) throw new ProgramError('the program has a second prediction', stmt);
          prediction = stmt;
          for (const t of stmt.terms) {
            if (!logits.has(t)) {
              throw new ProgramError(
                bases.has(t) ? `'${t}' is not a projection (logits) variable` : `logits '${t}' is not defined earlier`,
                stmt,
              );
            }
          }
          break;
      }
      const basis = basisOfStatement(program, stmt, bases);
      if (stmt.kind === 'select') selectors.add(stmt.name);
      else if (basis) bases.set(stmt.name, basis);
      if (stmt.kind === 'project') logits.add(stmt.name);
    } catch (err) {
      if (err instanceof ProgramError && program.file && err.file === undefined) {
        throw new ProgramError(err.detail, err.statement, program.file);
      }
      throw err;
    }
  }
  if (!prediction) throw new ProgramError('the program has no prediction statement', undefined, program.file);
  return bases;
}
