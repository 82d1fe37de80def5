// The op matrix behind a select or project line, with labelled rows and columns, taken from the interpreter's
// own opMatrix so that the picture is exactly what executes.
import { inferBases } from '../../../server/src/program/bases';
import { opMatrix } from '../../../server/src/interpreter/ops';
import type { Basis, Matrix, Program, Statement } from '../../../server/src/program/types';

export interface LabelledMatrix {
  title: string;
  matrix: Matrix;
  rowLabels: string[];
  colLabels: string[];
  rowTitle: string;
  colTitle: string;
}

const ONE_ROW: Basis = { kind: 'numeric', size: 1, labels: ['all'] };

export function opMatrixOf(program: Program, stmt: Statement): LabelledMatrix | undefined {
  if (stmt.kind !== 'select' && stmt.kind !== 'project') return undefined;
  const bases = inferBases(program);
  if (stmt.kind === 'select') {
    const cols = bases.get(stmt.k);
    const rows = stmt.q ? bases.get(stmt.q) : ONE_ROW;
    if (!rows || !cols) return undefined;
    return {
      title: `${stmt.name}: ${stmt.q ? `query ${stmt.q} x key ${stmt.k}` : `key ${stmt.k}`}`,
      matrix: opMatrix(program, stmt.op, rows, cols),
      rowLabels: [...rows.labels],
      colLabels: [...cols.labels],
      rowTitle: stmt.q ? `q = ${stmt.q}` : 'query bias',
      colTitle: `k = ${stmt.k}`,
    };
  }
  const vocab = bases.get('token');
  const rows = stmt.inp ? bases.get(stmt.inp) : ONE_ROW;
  if (!rows || !vocab) return undefined;
  return {
    title: `${stmt.name}: ${stmt.inp ? `${stmt.inp} -> logits` : 'bias -> logits'}`,
    matrix: opMatrix(program, stmt.op, rows, vocab),
    rowLabels: [...rows.labels],
    colLabels: [...vocab.labels],
    rowTitle: stmt.inp ? `inp = ${stmt.inp}` : 'bias',
    colTitle: 'output token',
  };
}
