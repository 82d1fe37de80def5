// Watch/evaluate expressions for the RASP debugger, in the program's own notation: variable names, indexing
// by position (`a1[3]`), by basis label or index (`a1[3]["a"]`, `a1[3][0]`, `a1["a"]` = that entry at every
// position), selector rows (`s1[2][0]`), arithmetic, comparisons and a few reductions. Kept tiny and
// separate from the program grammar because debugger values (whole variables, rows, matrices) are not
// program values. No vscode imports.

export type Expression =
  | { kind: 'num'; value: number }
  | { kind: 'str'; value: string }
  | { kind: 'name'; name: string }
  | { kind: 'index'; target: Expression; key: Expression }
  | { kind: 'unary'; op: '-' | '!'; arg: Expression }
  | { kind: 'binary'; op: BinaryOp; left: Expression; right: Expression }
  | { kind: 'call'; fn: string; args: Expression[] };

type BinaryOp = '+' | '-' | '*' | '/' | '%' | '==' | '!=' | '<' | '<=' | '>' | '>=' | '&&' | '||';

/** A labelled vector: a position's distribution over a basis, or one basis entry across positions. */
export interface LabelledVector {
  kind: 'vector';
  title: string;
  labels: string[];
  data: number[];
  /** Labels are token strings (shown quoted). */
  quoted?: boolean;
}

/** A per-position variable (n rows over a basis) or an n x n selector/attention matrix. */
export interface Table {
  kind: 'table';
  title: string;
  rowLabels: string[];
  colLabels: string[];
  /** Row-major rows x cols. */
  data: ArrayLike<number>;
  /** Whether string keys index columns (variables: by basis label) — selectors have none. */
  labelledColumns: boolean;
  /** Column labels are token strings (shown quoted). */
  quoted?: boolean;
  /** Selector/attention matrices: row i has keys 0..i only. */
  causal?: boolean;
  /** Rows shown in the Variables view (while stepping through a statement's rows); evaluate sees all. */
  visibleRows?: number;
  /** Replaces the top-entries summary of each row (e.g. the decided token of a prediction row). */
  rowSummaries?: string[];
  basisKind?: string;
}

export type DebugValue = { kind: 'number'; value: number } | { kind: 'string'; value: string } | LabelledVector | Table;

/** Functions callable in watch expressions (for completion and the error message). */
export const EXPRESSION_FUNCTIONS = ['sum', 'mean', 'max', 'min', 'argmax', 'len', 'abs', 'attention'] as const;

export class ExpressionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExpressionError';
  }
}

const BINARY_PRECEDENCE: Record<BinaryOp, number> = {
  '||': 1,
  '&&': 2,
  '==': 3,
  '!=': 3,
  '<': 4,
  '<=': 4,
  '>': 4,
  '>=': 4,
  '+': 5,
  '-': 5,
  '*': 6,
  '/': 6,
  '%': 6,
};

type Token = { t: 'num'; v: number } | { t: 'str'; v: string } | { t: 'id'; v: string } | { t: 'op'; v: string };

function lex(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) {
      i++;
    } else if (/[0-9.]/.test(c)) {
      const m = /^(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?/.exec(text.slice(i));
      if (!m) throw new ExpressionError(`unexpected '${c}' at column ${i + 1}`);
      out.push({ t: 'num', v: Number(m[0]) });
      i += m[0].length;
    } else if (c === '"' || c === "'") {
      const end = text.indexOf(c, i + 1);
      if (end < 0) throw new ExpressionError(`unterminated string starting at column ${i + 1}`);
      out.push({ t: 'str', v: text.slice(i + 1, end) });
      i = end + 1;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i));
      out.push({ t: 'id', v: m![0] });
      i += m![0].length;
    } else {
      const two = text.slice(i, i + 2);
      if (['==', '!=', '<=', '>=', '&&', '||'].includes(two)) {
        out.push({ t: 'op', v: two });
        i += 2;
      } else if ('+-*/%<>![](),'.includes(c)) {
        out.push({ t: 'op', v: c });
        i++;
      } else {
        throw new ExpressionError(`unexpected '${c}' at column ${i + 1}`);
      }
    }
  }
  return out;
}

export function parseExpression(text: string): Expression {
  const toks = lex(text);
  let p = 0;
  const peekOp = (v: string): boolean => p < toks.length && toks[p].t === 'op' && toks[p].v === v;
  const expectOp = (v: string): void => {
    if (!peekOp(v)) throw new ExpressionError(`expected '${v}'${p < toks.length ? ` before '${String(toks[p].v)}'` : ' at the end'}`);
    p++;
  };

  function primary(): Expression {
    const tok = toks[p];
    if (!tok) throw new ExpressionError('unexpected end of expression');
    p++;
    let e: Expression;
    if (tok.t === 'num') e = { kind: 'num', value: tok.v };
    else if (tok.t === 'str') e = { kind: 'str', value: tok.v };
    else if (tok.t === 'id') {
      if (peekOp('(')) {
        p++;
        const args: Expression[] = [];
        if (!peekOp(')')) {
          args.push(binary(0));
          while (peekOp(',')) {
            p++;
            args.push(binary(0));
          }
        }
        expectOp(')');
        e = { kind: 'call', fn: tok.v, args };
      } else e = { kind: 'name', name: tok.v };
    } else if (tok.v === '(') {
      e = binary(0);
      expectOp(')');
    } else if (tok.v === '-' || tok.v === '!') {
      return { kind: 'unary', op: tok.v, arg: primary() };
    } else throw new ExpressionError(`unexpected '${tok.v}'`);
    while (peekOp('[')) {
      p++;
      const key = binary(0);
      expectOp(']');
      e = { kind: 'index', target: e, key };
    }
    return e;
  }

  // Precedence climbing over the binary operators (all left-associative).
  function binary(minPrec: number): Expression {
    let left = primary();
    for (;;) {
      const tok = toks[p];
      if (!tok || tok.t !== 'op' || !(tok.v in BINARY_PRECEDENCE)) return left;
      const op = tok.v as BinaryOp;
      const prec = BINARY_PRECEDENCE[op];
      if (prec <= minPrec) return left;
      p++;
      left = { kind: 'binary', op, left, right: binary(prec) };
    }
  }

  if (toks.length === 0) throw new ExpressionError('empty expression');
  const e = binary(0);
  if (p < toks.length) throw new ExpressionError(`unexpected '${String(toks[p].v)}'`);
  return e;
}

/** Looks up names in the paused program state. */
export interface EvalScope {
  lookup(name: string): DebugValue | undefined;
  /** Names that exist at this point (for the error message). */
  names(): string[];
  /** `attention(a1)`: the attention weights of an aggregate. */
  attention?(name: string): Table | undefined;
}

export function evaluateExpression(text: string, scope: EvalScope): DebugValue {
  return evalNode(parseExpression(text), scope);
}

function describe(v: DebugValue): string {
  return v.kind === 'table' || v.kind === 'vector' ? v.title : v.kind;
}

function evalNode(e: Expression, scope: EvalScope): DebugValue {
  switch (e.kind) {
    case 'num':
      return { kind: 'number', value: e.value };
    case 'str':
      return { kind: 'string', value: e.value };
    case 'name': {
      const v = scope.lookup(e.name);
      if (!v) {
        throw new ExpressionError(`'${e.name}' is not defined at this point (known: ${scope.names().join(', ') || 'none'})`);
      }
      return v;
    }
    case 'index':
      return index(evalNode(e.target, scope), evalNode(e.key, scope));
    case 'unary': {
      const a = evalNode(e.arg, scope);
      return map1(a, (x) => (e.op === '-' ? -x : x === 0 ? 1 : 0), `${e.op}(${describe(a)})`);
    }
    case 'binary':
      return map2(evalNode(e.left, scope), evalNode(e.right, scope), e.op);
    case 'call':
      if (e.fn === 'attention' && e.args.length === 1 && e.args[0].kind === 'name' && scope.attention) {
        const name = e.args[0].name;
        const table = scope.attention(name);
        if (!table) throw new ExpressionError(`'${name}' is not an aggregate that has run`);
        return table;
      }
      return call(
        e.fn,
        e.args.map((a) => evalNode(a, scope)),
      );
  }
}

function index(target: DebugValue, key: DebugValue): DebugValue {
  if (target.kind === 'table') {
    if (key.kind === 'number') {
      return tableRow(target, checkIndex(key.value, target.rowLabels.length, target.title));
    }
    if (key.kind === 'string' && target.labelledColumns) {
      const c = labelIndex(target.colLabels, key.value, target.title);
      const cols = target.colLabels.length;
      return {
        kind: 'vector',
        title: `${target.title}["${key.value}"]`,
        labels: target.rowLabels,
        data: target.rowLabels.map((_, r) => target.data[r * cols + c]),
      };
    }
    throw new ExpressionError(`${target.title} is indexed by ${target.labelledColumns ? 'a position or a basis label' : 'a query position'}`);
  }
  if (target.kind === 'vector') {
    if (key.kind === 'number') return { kind: 'number', value: target.data[checkIndex(key.value, target.data.length, target.title)] };
    if (key.kind === 'string') return { kind: 'number', value: target.data[labelIndex(target.labels, key.value, target.title)] };
    throw new ExpressionError(`${target.title} is indexed by a number or a label`);
  }
  throw new ExpressionError(`a ${target.kind} cannot be indexed`);
}

/** Row i of a table as a vector (causal matrices: keys 0..i only). */
export function tableRow(table: Table, i: number): LabelledVector {
  const cols = table.colLabels.length;
  const size = table.causal ? i + 1 : cols;
  return {
    kind: 'vector',
    title: `${table.title}[${i}]`,
    labels: table.colLabels.slice(0, size),
    data: Array.from({ length: size }, (_, c) => table.data[i * cols + c]),
    quoted: table.quoted,
  };
}

function checkIndex(x: number, size: number, title: string): number {
  if (!Number.isInteger(x) || x < 0 || x >= size) throw new ExpressionError(`index ${x} is out of range for ${title} (0..${size - 1})`);
  return x;
}

function labelIndex(labels: string[], label: string, title: string): number {
  const i = labels.indexOf(label);
  if (i < 0) throw new ExpressionError(`"${label}" is not a label of ${title} (labels: ${labels.slice(0, 20).join(', ')}${labels.length > 20 ? ', ...' : ''})`);
  return i;
}

function map1(a: DebugValue, f: (x: number) => number, title: string): DebugValue {
  if (a.kind === 'number') return { kind: 'number', value: f(a.value) };
  if (a.kind === 'vector') return { kind: 'vector', title, labels: a.labels, data: a.data.map(f), quoted: a.quoted };
  throw new ExpressionError(`arithmetic needs numbers or vectors, not ${describe(a)}`);
}

function apply(op: BinaryOp, x: number, y: number): number {
  switch (op) {
    case '+':
      return x + y;
    case '-':
      return x - y;
    case '*':
      return x * y;
    case '/':
      return x / y;
    case '%':
      return x % y;
    case '==':
      return x === y ? 1 : 0;
    case '!=':
      return x !== y ? 1 : 0;
    case '<':
      return x < y ? 1 : 0;
    case '<=':
      return x <= y ? 1 : 0;
    case '>':
      return x > y ? 1 : 0;
    case '>=':
      return x >= y ? 1 : 0;
    case '&&':
      return x !== 0 && y !== 0 ? 1 : 0;
    case '||':
      return x !== 0 || y !== 0 ? 1 : 0;
  }
}

function map2(a: DebugValue, b: DebugValue, op: BinaryOp): DebugValue {
  if ((op === '==' || op === '!=') && a.kind === 'string' && b.kind === 'string') {
    return { kind: 'number', value: (a.value === b.value) === (op === '==') ? 1 : 0 };
  }
  if (a.kind === 'number' && b.kind === 'number') return { kind: 'number', value: apply(op, a.value, b.value) };
  if (a.kind === 'vector' && b.kind === 'number') return map1(a, (x) => apply(op, x, b.value), `${a.title} ${op} ${b.value}`);
  if (a.kind === 'number' && b.kind === 'vector') return map1(b, (y) => apply(op, a.value, y), `${a.value} ${op} ${b.title}`);
  if (a.kind === 'vector' && b.kind === 'vector') {
    if (a.data.length !== b.data.length) throw new ExpressionError(`${a.title} and ${b.title} have different lengths (${a.data.length}, ${b.data.length})`);
    return { kind: 'vector', title: `${a.title} ${op} ${b.title}`, labels: a.labels, data: a.data.map((x, i) => apply(op, x, b.data[i])) };
  }
  throw new ExpressionError(`'${op}' needs numbers or vectors, not ${describe(a)} and ${describe(b)}`);
}

function call(fn: string, args: DebugValue[]): DebugValue {
  const one = (): LabelledVector => {
    if (args.length !== 1 || args[0].kind !== 'vector') throw new ExpressionError(`${fn}(v) takes one vector, e.g. ${fn}(a1[0])`);
    return args[0];
  };
  switch (fn) {
    case 'sum':
      return { kind: 'number', value: one().data.reduce((s, x) => s + x, 0) };
    case 'mean': {
      const v = one();
      return { kind: 'number', value: v.data.reduce((s, x) => s + x, 0) / v.data.length };
    }
    case 'max':
      return { kind: 'number', value: Math.max(...one().data) };
    case 'min':
      return { kind: 'number', value: Math.min(...one().data) };
    case 'argmax': {
      const v = one();
      let best = 0;
      for (let i = 1; i < v.data.length; i++) if (v.data[i] > v.data[best]) best = i;
      return { kind: 'string', value: v.labels[best] };
    }
    case 'len':
      return { kind: 'number', value: one().data.length };
    case 'abs':
      if (args.length !== 1) throw new ExpressionError('abs(x) takes one argument');
      return map1(args[0], Math.abs, `abs(${describe(args[0])})`);
    default:
      throw new ExpressionError(`unknown function '${fn}' (known: ${EXPRESSION_FUNCTIONS.join(', ')})`);
  }
}
