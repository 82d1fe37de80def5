// "RASP: Run Program on Input..." (also the language server's "Run" code lens): runs the interpreter on one input
// and prints every variable's per-position argmax and the prediction.
import * as vscode from 'vscode';
import { Execution } from '../../../server/src/interpreter/index';
import { inferBases } from '../../../server/src/program/bases';
import { activeRaspDocument, programFor } from '../programs';
import { exampleInput } from './views';

let channel: vscode.OutputChannel | undefined;

function argmaxLabels(data: Float64Array, n: number, labels: readonly string[]): string[] {
  const size = labels.length;
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < size; j++) if (data[i * size + j] > data[i * size + best]) best = j;
    const v = data[i * size + best];
    out.push(size === 1 ? v.toPrecision(3) : `${labels[best]}${v < 0.995 ? `(${v.toFixed(2)})` : ''}`);
  }
  return out;
}

function pad(cells: string[], widths: number[]): string {
  return cells.map((c, i) => c.padEnd(widths[i])).join('  ');
}

/** Accepts (uri), (uri, input), ({ uri, input }) as sent by menus, the palette and code lenses. */
export async function runCommand(arg?: unknown, inputArg?: unknown): Promise<void> {
  let uri: vscode.Uri | undefined;
  let input = typeof inputArg === 'string' ? inputArg : undefined;
  if (arg instanceof vscode.Uri) uri = arg;
  else if (typeof arg === 'string') uri = vscode.Uri.parse(arg);
  else if (arg && typeof arg === 'object' && 'uri' in arg) {
    const a = arg as { uri: string | vscode.Uri; input?: string };
    uri = typeof a.uri === 'string' ? vscode.Uri.parse(a.uri) : a.uri;
    input ??= a.input;
  }
  const doc = await activeRaspDocument(uri);
  if (!doc) return;
  const program = await programFor(doc);
  if (!program) {
    void vscode.window.showErrorMessage(`${vscode.workspace.asRelativePath(doc.uri)} has errors; fix them first (see Problems).`);
    return;
  }
  input ??= await exampleInput(doc, program, true);
  if (!input) return;
  let exec: Execution;
  try {
    exec = new Execution(program, input);
    exec.runToEnd();
  } catch (err) {
    void vscode.window.showErrorMessage(`Running on "${input}": ${err instanceof Error ? err.message : String(err)}`);
    return;
  }
  const result = exec.result();
  const bases = inferBases(program);
  const rows: string[][] = [['', ...result.tokens]];
  for (const s of program.statements) {
    if (s.kind === 'select' || s.kind === 'prediction') continue;
    const v = exec.value(s.name);
    const basis = bases.get(s.name);
    if (!v || !basis) continue;
    rows.push([s.name, ...argmaxLabels(v.data, v.n, basis.labels)]);
  }
  rows.push(['prediction', ...result.prediction.map((p) => (Array.isArray(p) ? `{${p.join(',')}}` : p))]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  channel ??= vscode.window.createOutputChannel('RASP Run');
  channel.appendLine(`${vscode.workspace.asRelativePath(doc.uri)} on "${input}":`);
  for (const r of rows) channel.appendLine(pad(r, widths));
  channel.appendLine('');
  channel.show(true);
  const last = result.prediction[result.prediction.length - 1];
  void vscode.window.showInformationMessage(`Prediction at the last position: ${Array.isArray(last) ? `{${last.join(', ')}}` : last}`);
}
