// Re-basing a variable's readers (d-rasp.md 5.2/5.4): when an opaque MLP output v (residual basis, d_model) is
// replaced by a primitive f whose features F satisfy v ≈ F·C, every reader that saw v through an op matrix A now
// sees F through C·A (query side / projection input / MLP input embedding) or A·Cᵀ (key side). Aggregates are
// linear, so an aggregate of v becomes an aggregate of F and its own readers are re-based the same way.
import type { Matrix, OpaqueMlp, Program, Statement } from '../../program/types';
import { cloneProgram, freshMatrixName } from './graph';
import { type Dense, fromMatrix, matmul, toMatrix, transpose } from './linalg';

export class RebaseError extends Error {}

function rebasedMatrix(p: Program, ref: string, c: Dense, side: 'rows' | 'cols', tag: string): string {
  const m = p.matrices.get(ref);
  if (!m) throw new RebaseError(`matrix ${ref} is missing`);
  const a = fromMatrix(m);
  let out: Dense;
  if (side === 'rows') {
    if (a.rows !== c.cols) throw new RebaseError(`matrix ${ref} has ${a.rows} rows, the readout has ${c.cols} columns`);
    out = matmul(c, a);
  } else {
    if (a.cols !== c.cols) throw new RebaseError(`matrix ${ref} has ${a.cols} columns, the readout has ${c.cols} columns`);
    out = matmul(a, transpose(c));
  }
  const name = freshMatrixName(p, `${ref}_${tag}`);
  p.matrices.set(name, toMatrix(out));
  return name;
}

function rebaseMlp(mlp: OpaqueMlp, index: number, c: Dense): OpaqueMlp {
  const e = mlp.inputEmbeddings[index];
  if (e.rows !== c.cols) throw new RebaseError(`MLP input ${index} has ${e.rows} rows, the readout has ${c.cols} columns`);
  const embeddings: Matrix[] = [...mlp.inputEmbeddings];
  embeddings[index] = toMatrix(matmul(c, fromMatrix(e)));
  return { ...mlp, inputEmbeddings: embeddings };
}

/**
 * Returns a copy of `p` where readers of `from` read `to` instead, with their matrices re-based by `c`
 * (features x d). `tag` names the new matrices. Throws RebaseError when a reader cannot be re-based (a predicate
 * op or a hand-written map on a residual variable).
 */
export function rebaseReaders(p: Program, from: string, to: string, c: Dense, tag: string): Program {
  const out = cloneProgram(p);
  const pending: [string, string][] = [[from, to]];
  while (pending.length > 0) {
    const [src, dst] = pending.shift() as [string, string];
    out.statements = out.statements.map((s): Statement => {
      switch (s.kind) {
        case 'select': {
          if (s.q !== src && s.k !== src) return s;
          if (s.op.kind !== 'matrix' || s.specialOp) throw new RebaseError(`${s.name} reads ${src} through a named op`);
          let ref = s.op.ref;
          if (s.q === src) ref = rebasedMatrix(out, ref, c, 'rows', tag);
          if (s.k === src) ref = rebasedMatrix(out, ref, c, 'cols', tag);
          return {
            ...s,
            op: { kind: 'matrix', ref },
            k: s.k === src ? dst : s.k,
            ...(s.q !== undefined ? { q: s.q === src ? dst : s.q } : {}),
          };
        }
        case 'project': {
          if (s.inp !== src) return s;
          if (s.op.kind !== 'matrix' || s.specialOp) throw new RebaseError(`${s.name} reads ${src} through a named op`);
          return { ...s, inp: dst, op: { kind: 'matrix', ref: rebasedMatrix(out, s.op.ref, c, 'rows', tag) } };
        }
        case 'aggregate':
          if (s.v !== src) return s;
          // The aggregate now averages features; its readers get the same readout.
          pending.push([s.name, s.name]);
          return { ...s, v: dst };
        case 'elementwise': {
          if (!s.inputs.includes(src)) return s;
          if (s.fn.name !== 'mlp') throw new RebaseError(`${s.name} applies ${s.fn.name} to the residual variable ${src}`);
          const mlp = out.mlps.get(s.fn.ref);
          if (!mlp) throw new RebaseError(`MLP weights ${s.fn.ref} are missing`);
          let next = mlp;
          s.inputs.forEach((n, i) => {
            if (n === src) next = rebaseMlp(next, i, c);
          });
          out.mlps.set(s.fn.ref, next);
          return { ...s, inputs: s.inputs.map((n) => (n === src ? dst : n)) };
        }
        default:
          return s;
      }
    });
  }
  return out;
}
