// Parsed programs for open .rasp documents, cached per document version. Hovers, heatmaps, the dataflow graph
// and runs all read the same typed Program the interpreter executes (what is printed is what runs).
import * as vscode from 'vscode';
import { loadProgramText, parseProgram } from '../../server/src/language/load';
import type { Program, Statement } from '../../server/src/program/types';

interface Entry {
  version: number;
  program: Promise<Program | undefined>;
}

const cache = new Map<string, Entry>();

async function load(doc: vscode.TextDocument): Promise<Program | undefined> {
  const file = doc.uri.scheme === 'file' ? doc.uri.fsPath : undefined;
  const text = doc.getText();
  // With a file path the sidecar the header names is read too, so matrices and opaque MLPs are complete.
  if (file) {
    try {
      return await loadProgramText(text, file);
    } catch {
      // fall through: without the sidecar the text may still parse (its problems are the server's diagnostics)
    }
  }
  const { program } = await parseProgram(text, file);
  return program;
}

export function programFor(doc: vscode.TextDocument): Promise<Program | undefined> {
  const key = doc.uri.toString();
  const hit = cache.get(key);
  if (hit && hit.version === doc.version) return hit.program;
  const program = load(doc).catch(() => undefined);
  cache.set(key, { version: doc.version, program });
  return program;
}

export function forgetProgram(doc: vscode.TextDocument): void {
  cache.delete(doc.uri.toString());
}

/** The statement that covers a 0-based editor line (continuation lines belong to the statement above). */
export function statementAtLine(program: Program, doc: vscode.TextDocument, line: number): Statement | undefined {
  const oneBased = line + 1;
  const exact = program.statements.find((s) => s.line === oneBased);
  if (exact) return exact;
  const text = doc.lineAt(line).text;
  if (!/^\s+\S/.test(text)) return undefined;
  let best: Statement | undefined;
  for (const s of program.statements) if (s.line > 0 && s.line < oneBased && (!best || s.line > best.line)) best = s;
  return best;
}

export async function activeRaspDocument(uri?: vscode.Uri): Promise<vscode.TextDocument | undefined> {
  if (uri) return vscode.workspace.openTextDocument(uri);
  const ed = vscode.window.activeTextEditor;
  if (ed && ed.document.languageId === 'rasp') return ed.document;
  void vscode.window.showWarningMessage('Open a .rasp program first.');
  return undefined;
}
