// Plain-language descriptions of statements and their model components, for hovers and the dataflow graph.
// No vscode imports, so the wording is testable in isolation.
import type { Provenance, Statement } from '../../../server/src/program/types';

export function componentInWords(p: Provenance): string {
  if (p.mlp) return `layer ${p.layer} MLP`;
  if (p.head !== null && p.head !== undefined) return `layer ${p.layer} head ${p.head}`;
  return p.layer >= 0 ? `layer ${p.layer}` : 'unembedding (lm_head)';
}

export function kindInWords(stmt: Statement): string {
  switch (stmt.kind) {
    case 'select':
      return stmt.q ? `selector: query \`${stmt.q}\` attends to key \`${stmt.k}\`` : `key-only selector over \`${stmt.k}\``;
    case 'aggregate':
      return stmt.selectors.length
        ? `aggregate of \`${stmt.v}\` weighted by softmax(${stmt.selectors.map((s) => `\`${s}\``).join(' + ')})`
        : `uniform average of \`${stmt.v}\` over the prefix`;
    case 'elementwise':
      return `element-wise \`${stmt.fn.name}\` of ${stmt.inputs.map((s) => `\`${s}\``).join(', ')}`;
    case 'project':
      return stmt.inp ? `logits from \`${stmt.inp}\`` : 'constant logit bias';
    case 'prediction':
      return `${stmt.fn} of ${stmt.terms.map((s) => `\`${s}\``).join(' + ')}`;
  }
}

/** Inputs a statement reads (variables and selectors), for the dataflow graph. */
export function statementInputs(stmt: Statement): string[] {
  switch (stmt.kind) {
    case 'select':
      return stmt.q ? [stmt.q, stmt.k] : [stmt.k];
    case 'aggregate':
      return [...stmt.selectors, stmt.v];
    case 'elementwise':
      return [...stmt.inputs];
    case 'project':
      return stmt.inp ? [stmt.inp] : [];
    case 'prediction':
      return [...stmt.terms];
  }
}
