// Compiles predicate and map expressions into closures once, so building a P x P op matrix or evaluating a map at
// every position does not re-walk the tree. Every value has a static type:
//   token  - a vocabulary id: `==`/`!=` between tokens is identity; arithmetic and ordering use the token's
//            numeric value when its string is a number, else its id;
//   index  - a basis index (positions, feature/product entries): a plain number, and `==` with a token compares
//            the index with the token id (the "index equality" of mixed bases, d-rasp.md 3.1);
//   num    - a real number.
import type { Basis, Expr, Program } from '../program/types';
import { isBooleanBasis } from '../program/bases';
import { UserError } from '../util/errors';

export type ExprType = 'token' | 'index' | 'num';

export interface Compiled<C> {
  ty: ExprType;
  f: (ctx: C) => number;
}

/** Numeric value of every token: the number its string spells, else its id. */
export function tokenNumbers(vocab: readonly string[]): Float64Array {
  const out = new Float64Array(vocab.length);
  vocab.forEach((t, id) => {
    out[id] = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t) ? Number(t) : id;
  });
  return out;
}

/** Floored modulo (the sign follows the divisor), so `(k-q)%3==0` holds for negative differences as expected. */
function mod(a: number, b: number): number {
  return a - b * Math.floor(a / b);
}

const FUNCTIONS: Record<string, (args: number[]) => number> = {
  abs: (a) => Math.abs(a[0]),
  sign: (a) => Math.sign(a[0]),
  floor: (a) => Math.floor(a[0]),
  ceil: (a) => Math.ceil(a[0]),
  round: (a) => Math.round(a[0]),
  sqrt: (a) => Math.sqrt(a[0]),
  exp: (a) => Math.exp(a[0]),
  log: (a) => Math.log(a[0]),
  relu: (a) => Math.max(0, a[0]),
  pow: (a) => Math.pow(a[0], a[1]),
  clamp: (a) => Math.min(Math.max(a[0], a[1]), a[2]),
  min: (a) => Math.min(...a),
  max: (a) => Math.max(...a),
};

/** Resolves the leaves that depend on where the expression is used (q/k, inp/out, variables). */
export type LeafResolver<C> = (e: Expr & ({ kind: 'ref' } | { kind: 'index' })) => Compiled<C>;

export function compileExpr<C>(program: Program, expr: Expr, leaf: LeafResolver<C>): Compiled<C> {
  const vocab = program.header.vocab;
  const tokenNum = tokenNumbers(vocab);
  const numeric = (c: Compiled<C>): ((ctx: C) => number) => {
    if (c.ty !== 'token') return c.f;
    const f = c.f;
    return (ctx) => tokenNum[f(ctx)];
  };
  const tokenId = (text: string): number => {
    const id = vocab.indexOf(text);
    if (id < 0) throw new UserError(`token "${text}" is not in the vocabulary`);
    return id;
  };
  const go = (e: Expr): Compiled<C> => {
    switch (e.kind) {
      case 'num': {
        const v = e.value;
        return { ty: 'num', f: () => v };
      }
      case 'token': {
        const id = tokenId(e.text);
        return { ty: 'token', f: () => id };
      }
      case 'special': {
        const id = program.header.special[e.name.toLowerCase() as 'bos' | 'sep' | 'eos' | 'pad'];
        if (id === undefined) throw new UserError(`${e.name} is not in the vocabulary`);
        return { ty: 'token', f: () => id };
      }
      case 'ref':
      case 'index':
        return leaf(e);
      case 'unary': {
        const a = go(e.arg);
        const fa = numeric(a);
        return e.op === '-' ? { ty: 'num', f: (c) => -fa(c) } : { ty: 'num', f: (c) => (fa(c) !== 0 ? 0 : 1) };
      }
      case 'binary': {
        const l = go(e.left);
        const r = go(e.right);
        if (e.op === '==' || e.op === '!=') {
          // Tokens compare by identity with tokens and by id with bare indices; with numbers, by numeric value.
          const raw = (l.ty === 'token') === (r.ty === 'token') || l.ty === 'index' || r.ty === 'index';
          const fl = raw ? l.f : numeric(l);
          const fr = raw ? r.f : numeric(r);
          return e.op === '=='
            ? { ty: 'num', f: (c) => (fl(c) === fr(c) ? 1 : 0) }
            : { ty: 'num', f: (c) => (fl(c) !== fr(c) ? 1 : 0) };
        }
        const fl = numeric(l);
        const fr = numeric(r);
        switch (e.op) {
          case '+':
            return { ty: 'num', f: (c) => fl(c) + fr(c) };
          case '-':
            return { ty: 'num', f: (c) => fl(c) - fr(c) };
          case '*':
            return { ty: 'num', f: (c) => fl(c) * fr(c) };
          case '/':
            return { ty: 'num', f: (c) => fl(c) / fr(c) };
          case '%':
            return { ty: 'num', f: (c) => mod(fl(c), fr(c)) };
          case '<':
            return { ty: 'num', f: (c) => (fl(c) < fr(c) ? 1 : 0) };
          case '<=':
            return { ty: 'num', f: (c) => (fl(c) <= fr(c) ? 1 : 0) };
          case '>':
            return { ty: 'num', f: (c) => (fl(c) > fr(c) ? 1 : 0) };
          case '>=':
            return { ty: 'num', f: (c) => (fl(c) >= fr(c) ? 1 : 0) };
          case '&&':
            return { ty: 'num', f: (c) => (fl(c) !== 0 && fr(c) !== 0 ? 1 : 0) };
          case '||':
            return { ty: 'num', f: (c) => (fl(c) !== 0 || fr(c) !== 0 ? 1 : 0) };
          default: {
            const never: never = e.op;
            throw new UserError(`unknown operator ${String(never)}`);
          }
        }
      }
      case 'call': {
        const fn = FUNCTIONS[e.fn];
        if (!fn) throw new UserError(`unknown function ${e.fn}()`);
        const args = e.args.map((a) => numeric(go(a)));
        const buf = new Array<number>(args.length);
        return {
          ty: 'num',
          f: (c) => {
            for (let n = 0; n < args.length; n++) buf[n] = args[n](c);
            return fn(buf);
          },
        };
      }
      default: {
        const never: never = e;
        throw new UserError(`unknown expression ${JSON.stringify(never)}`);
      }
    }
  };
  return go(expr);
}

/** The type a basis index has inside a predicate: tokens for the token basis, plain indices otherwise. */
export function basisValueType(basis: Basis): ExprType {
  return basis.kind === 'token' ? 'token' : 'index';
}

/** Per-position variable data a map reads: row-major n x size, plus the argmax of one-hot rows when known. */
export interface MapVar {
  basis: Basis;
  data: Float64Array;
}

export interface MapCtx {
  vars: Map<string, MapVar>;
  i: number;
}

function argmaxRow(data: Float64Array, offset: number, size: number): number {
  let best = 0;
  for (let c = 1; c < size; c++) if (data[offset + c] > data[offset + best]) best = c;
  return best;
}

/**
 * Compiles a hand-written map. A reference reads the variable at the current position: a one-entry basis gives
 * its number, the boolean basis the probability of true, any other basis its most likely entry (a token for the
 * token basis, an index otherwise). `x["a"]` / `x[3]` read one component.
 */
export function compileMap(program: Program, expr: Expr, bases: Map<string, Basis>): Compiled<MapCtx> {
  const basisOf = (name: string): Basis => {
    const b = bases.get(name);
    if (!b) throw new UserError(`'${name}' is not a variable defined earlier`);
    return b;
  };
  const read = (ctx: MapCtx, name: string): MapVar => {
    const v = ctx.vars.get(name);
    if (!v) throw new UserError(`'${name}' has no value yet`);
    return v;
  };
  const leaf: LeafResolver<MapCtx> = (e) => {
    if (e.kind === 'ref') {
      const name = e.name;
      const b = basisOf(name);
      if (b.size === 1) return { ty: 'num', f: (c) => read(c, name).data[c.i] };
      if (isBooleanBasis(b)) return { ty: 'num', f: (c) => read(c, name).data[c.i * 2 + 1] };
      const size = b.size;
      return { ty: basisValueType(b), f: (c) => argmaxRow(read(c, name).data, c.i * size, size) };
    }
    const target = e.target;
    const b = basisOf(target);
    const size = b.size;
    if (e.key.kind === 'token' || e.key.kind === 'special') {
      const label = e.key.kind === 'token' ? e.key.text : `<${e.key.name.toLowerCase()}>`;
      const at = b.labels.indexOf(label);
      if (at < 0) throw new UserError(`'${target}' has no entry "${label}"`);
      return { ty: 'num', f: (c) => read(c, target).data[c.i * size + at] };
    }
    const key = compileExpr(program, e.key, leaf);
    return {
      ty: 'num',
      f: (c) => {
        const at = key.f(c);
        if (!Number.isInteger(at) || at < 0 || at >= size) {
          throw new UserError(`index ${at} is outside ${target}'s basis (0..${size - 1}) at position ${c.i}`);
        }
        return read(c, target).data[c.i * size + at];
      },
    };
  };
  return compileExpr(program, expr, leaf);
}
