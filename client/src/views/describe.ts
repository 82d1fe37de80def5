// Plain-language descriptions of provenance: residual paths read right to left become "token via layer 0 head 1".
// No vscode imports, so the wording is testable in isolation.
import type { Provenance, Statement } from '../../../server/src/program/types';

/** `attn_output-1-0-attn_output-0-0-wte` -> `token via layer 0 head 0 via layer 1 head 0`. */
export function pathInWords(path: string): string {
  const parts = path.split('-');
  const words: string[] = [];
  // Outermost consumer first in the string; collect wrappers, then the innermost source.
  let i = 0;
  while (i < parts.length) {
    const p = parts[i];
    if (p === 'attn_output' && i + 2 < parts.length) {
      words.push(`layer ${parts[i + 1]} head ${parts[i + 2]}`);
      i += 3;
    } else if (p === 'mlp' && i + 1 < parts.length) {
      words.push(`layer ${parts[i + 1]} MLP`);
      i += 2;
    } else {
      break;
    }
  }
  const rest = parts.slice(i).join('-');
  const source = rest === 'wte' ? 'token' : rest === 'wpe' ? 'position' : rest === '' ? '' : rest === 'bias' || rest === 'vocab_bias' ? 'constant bias' : rest;
  const chain = words.reverse();
  if (!source) return chain.length ? `output of ${chain.join(' via ')}` : path;
  return chain.length ? `${source} via ${chain.join(' via ')}` : source;
}

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
