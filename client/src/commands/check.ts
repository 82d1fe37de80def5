// "RASP: Check Program Against Model": match accuracy per length bin in a worker; disagreeing sequences listed;
// the first disagreeing statement marked as a diagnostic where it can be located.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { runWithProgress, showJobError, type JobRunner } from '../jobs';
import { activeRaspDocument, programFor } from '../programs';
import { settings } from '../settings';
import { showCheckReport } from '../views/report';
import type { CheckReport } from '../workers/protocol';
import { resolveModelDir } from './decompile';

export const checkDiagnostics = vscode.languages.createDiagnosticCollection('rasp-check');

export async function checkCommand(jobs: JobRunner, log: vscode.OutputChannel, uri?: vscode.Uri): Promise<void> {
  const doc = await activeRaspDocument(uri);
  if (!doc) return;
  if (doc.isDirty && !(await doc.save())) return;
  const program = await programFor(doc);
  if (!program) {
    void vscode.window.showErrorMessage(`${vscode.workspace.asRelativePath(doc.uri)} has errors; fix them first (see Problems).`);
    return;
  }
  let modelDir: string | undefined;
  if (program.header.model) {
    const fromHeader = path.resolve(path.dirname(doc.uri.fsPath), program.header.model.path);
    if (fs.existsSync(path.join(fromHeader, 'config.json'))) modelDir = fromHeader;
  }
  modelDir ??= await resolveModelDir(undefined, 'Check against which model?');
  if (!modelDir) return;
  const s = settings();
  let report: CheckReport;
  try {
    report = await runWithProgress<CheckReport>(jobs, `Checking ${path.basename(doc.uri.fsPath)} against ${path.basename(modelDir)}`, {
      kind: 'check',
      rasp: doc.uri.fsPath,
      modelDir,
      samplesPerBin: s.samplesPerBin,
      seed: s.seed,
      backend: s.backend,
    });
  } catch (err) {
    showJobError(err, 'Checking', log);
    return;
  }
  // Statements named by the engine are located in the current text (it may have moved since the run).
  for (const d of report.disagreements) {
    if (d.line === undefined && d.statementName) d.line = program.statements.find((st) => st.name === d.statementName)?.line;
  }
  const located = report.disagreements.filter((d) => d.line !== undefined && d.line > 0);
  const diagnostics: vscode.Diagnostic[] = [];
  const byLine = new Map<number, typeof located>();
  for (const d of located) byLine.set(d.line!, [...(byLine.get(d.line!) ?? []), d]);
  for (const [line, ds] of byLine) {
    const text = doc.lineAt(line - 1);
    const diag = new vscode.Diagnostic(
      new vscode.Range(line - 1, text.firstNonWhitespaceCharacterIndex, line - 1, text.text.length),
      `First statement where program and model disagree on ${ds.length} sampled sequence${ds.length === 1 ? '' : 's'} (e.g. "${ds[0].input}" at position ${ds[0].position}).`,
      vscode.DiagnosticSeverity.Warning,
    );
    diag.source = 'rasp check';
    diagnostics.push(diag);
  }
  checkDiagnostics.set(doc.uri, diagnostics);
  await showCheckReport(report, (line) => {
    void vscode.window.showTextDocument(doc, vscode.ViewColumn.One).then((ed) => {
      const pos = new vscode.Position(line - 1, 0);
      ed.selection = new vscode.Selection(pos, pos);
      ed.revealRange(new vscode.Range(pos, pos), vscode.TextEditorRevealType.InCenter);
    });
  });
  void vscode.window.showInformationMessage(
    `Match accuracy ${(report.match * 100).toFixed(1)}% (${report.bins.map((b) => `${b.lengths[0]}-${b.lengths[1]}: ${(b.value * 100).toFixed(0)}%`).join(', ')}); ${report.disagreements.length} disagreement(s).`,
  );
}
