// "RASP: Check Program Against Model": match accuracy per length bin in a worker; disagreeing sequences listed;
// the first disagreeing statement (server/src/check/locate.ts) marked with a warning naming the reason and the input.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Program } from '../../../server/src/program/types';
import { runWithProgress, showJobError, type JobRunner } from '../jobs';
import { activeRaspDocument, programFor } from '../programs';
import { settings } from '../settings';
import { showCheckReport } from '../views/report';
import type { CheckReport } from '../workers/protocol';
import { resolveModelDir } from './decompile';

export const checkDiagnostics = vscode.languages.createDiagnosticCollection('rasp-check');

/** The warning on the first disagreeing statement: why, and on which input. */
export function firstDisagreementDiagnostics(doc: vscode.TextDocument, program: Program, report: CheckReport): vscode.Diagnostic[] {
  const first = report.firstDisagreement;
  if (!first) return [];
  // The statement is looked up by name in the text as it is now (lines may have moved since the run).
  const line = program.statements.find((st) => st.name === first.statement.name)?.line ?? first.statement.line;
  if (!line || line > doc.lineCount) return [];
  const text = doc.lineAt(line - 1);
  const diag = new vscode.Diagnostic(
    new vscode.Range(line - 1, text.firstNonWhitespaceCharacterIndex, line - 1, text.text.length),
    `Program and model disagree at position ${first.position} of "${first.sequence}": ${first.reason}.`,
    vscode.DiagnosticSeverity.Warning,
  );
  diag.source = 'rasp check';
  diag.code = 'first-disagreement';
  return [diag];
}

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
  // A new check replaces the last one's findings, whatever its outcome.
  checkDiagnostics.delete(doc.uri);
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
  checkDiagnostics.set(doc.uri, firstDisagreementDiagnostics(doc, (await programFor(doc)) ?? program, report));
  await showCheckReport(report, (line) => {
    void vscode.window.showTextDocument(doc, vscode.ViewColumn.One).then((ed) => {
      const pos = new vscode.Position(line - 1, 0);
      ed.selection = new vscode.Selection(pos, pos);
      ed.revealRange(new vscode.Range(pos, pos), vscode.TextEditorRevealType.InCenter);
    });
  });
  void vscode.window.showInformationMessage(
    `Match accuracy ${(report.match * 100).toFixed(1)}% (${report.bins.map((b) => `${b.lengths[0]}-${b.lengths[1]}: ${(b.value * 100).toFixed(0)}%`).join(', ')}); ${report.disagreements.length} disagreement(s)${
      report.firstDisagreement ? `; first disagreeing statement: ${report.firstDisagreement.statement.name} (line ${report.firstDisagreement.statement.line})` : ''
    }.`,
  );
}
