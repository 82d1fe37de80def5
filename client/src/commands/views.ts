// "Show heatmap" (a line's op matrix) and "Show attention on example" (every selector and aggregate of the program
// evaluated by the interpreter on the example input).
import * as vscode from 'vscode';
import { Execution } from '../../../server/src/interpreter/index';
import type { Program, Statement } from '../../../server/src/program/types';
import { activeRaspDocument, programFor, statementAtLine } from '../programs';
import { showMatrices, type PanelMatrix } from '../views/matrixPanel';
import { opMatrixOf } from '../views/opMatrices';

export interface LineTarget {
  uri?: string;
  name?: string;
}

async function resolveTarget(target?: LineTarget): Promise<{ doc: vscode.TextDocument; program: Program; stmt?: Statement } | undefined> {
  const doc = await activeRaspDocument(target?.uri ? vscode.Uri.parse(target.uri) : undefined);
  if (!doc) return undefined;
  const program = await programFor(doc);
  if (!program) {
    void vscode.window.showErrorMessage(`${vscode.workspace.asRelativePath(doc.uri)} has errors; fix them first (see Problems).`);
    return undefined;
  }
  let stmt = target?.name ? program.statements.find((s) => s.name === target.name) : undefined;
  const editor = vscode.window.activeTextEditor;
  if (!stmt && editor && editor.document === doc) stmt = statementAtLine(program, doc, editor.selection.active.line);
  return { doc, program, stmt };
}

export async function showHeatmapCommand(target?: LineTarget): Promise<void> {
  const r = await resolveTarget(target);
  if (!r) return;
  const candidates = r.program.statements.filter((s) => s.kind === 'select' || s.kind === 'project');
  let stmt = r.stmt && (r.stmt.kind === 'select' || r.stmt.kind === 'project') ? r.stmt : undefined;
  if (!stmt) {
    const pick = await vscode.window.showQuickPick(
      candidates.map((s) => ({ label: s.name, description: s.kind, stmt: s })),
      { placeHolder: 'Which select or project line?' },
    );
    stmt = pick?.stmt;
  }
  if (!stmt) return;
  const m = opMatrixOf(r.program, stmt);
  if (!m) {
    void vscode.window.showErrorMessage(`The op matrix of ${stmt.name} cannot be built (check its bases).`);
    return;
  }
  showMatrices(`Op matrix: ${stmt.name}`, `What line ${stmt.line} of ${vscode.workspace.asRelativePath(r.doc.uri)} scores, exactly as the interpreter uses it.`, [
    {
      id: stmt.name,
      title: m.title,
      rowLabels: m.rowLabels,
      colLabels: m.colLabels,
      rowTitle: m.rowTitle,
      colTitle: m.colTitle,
      values: Array.from(m.matrix.data),
      focus: true,
    },
  ]);
}

const lastInputs = new Map<string, string>();

export async function exampleInput(doc: vscode.TextDocument, program: Program, ask: boolean): Promise<string | undefined> {
  const remembered = lastInputs.get(doc.uri.toString()) ?? program.header.example;
  if (remembered && !ask) return remembered;
  const input = await vscode.window.showInputBox({
    title: 'Input sequence',
    prompt: `Space-separated tokens from: ${program.header.vocab.join(' ')}`,
    value: remembered ?? '',
    ignoreFocusOut: true,
  });
  if (input !== undefined && input.trim()) lastInputs.set(doc.uri.toString(), input.trim());
  return input?.trim() || undefined;
}

export async function showAttentionCommand(target?: LineTarget): Promise<void> {
  const r = await resolveTarget(target);
  if (!r) return;
  const input = await exampleInput(r.doc, r.program, false);
  if (!input) return;
  let exec: Execution;
  try {
    exec = new Execution(r.program, input);
    exec.runToEnd();
  } catch (err) {
    void vscode.window.showErrorMessage(`Running on "${input}": ${err instanceof Error ? err.message : String(err)}`);
    return;
  }
  const labels = exec.tokens.map((id, i) => `${i}:${r.program.header.vocab[id] ?? id}`);
  const n = exec.n;
  const matrices: PanelMatrix[] = [];
  for (const s of r.program.statements) {
    let values: number[] | undefined;
    let subtitle: string;
    if (s.kind === 'select') {
      const sel = exec.selector(s.name);
      if (!sel) continue;
      // Only keys at or before the query are visible (causal mask).
      values = Array.from(sel.scores, (v, idx) => (idx % n <= Math.floor(idx / n) ? v : NaN));
      subtitle = 'raw scores before scaling and softmax';
    } else if (s.kind === 'aggregate') {
      const att = exec.attention(s.name);
      if (!att) continue;
      values = Array.from(att, (v, idx) => (idx % n <= Math.floor(idx / n) ? v : NaN));
      subtitle = `attention weights over ${s.selectors.join(' + ') || 'the prefix (uniform)'}`;
    } else continue;
    const where = s.provenance ? (s.provenance.head !== null ? ` (layer ${s.provenance.layer} head ${s.provenance.head})` : ` (layer ${s.provenance.layer})`) : '';
    matrices.push({
      id: s.name,
      title: `${s.name}${where}`,
      subtitle,
      rowLabels: labels,
      colLabels: labels,
      rowTitle: 'query',
      colTitle: 'key',
      values,
      focus: s.name === r.stmt?.name,
    });
  }
  if (!matrices.length) {
    void vscode.window.showInformationMessage('This program has no selectors.');
    return;
  }
  showMatrices(`Attention: ${input}`, `Selectors and attention of ${vscode.workspace.asRelativePath(r.doc.uri)} on the input "${input}".`, matrices);
}
