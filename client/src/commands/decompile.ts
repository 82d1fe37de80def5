// "RASP: Decompile Model...": model folder -> task (detected or asked) -> extraction in a worker with staged,
// cancellable progress -> the .rasp written (never overwritten without asking) -> opened, with the report beside it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { runWithProgress, showJobError, type JobRunner } from '../jobs';
import { settings } from '../settings';
import { showExtractReport } from '../views/report';
import { extractOutputs, type ExtractReport, type ModelInfo } from '../workers/protocol';

/** A model folder from a clicked resource (folder, config.json, model.safetensors) or asked for. */
export async function resolveModelDir(uri?: vscode.Uri, title = 'Choose a model folder'): Promise<string | undefined> {
  if (uri instanceof vscode.Uri && uri.scheme === 'file') {
    const stat = await vscode.workspace.fs.stat(uri);
    return stat.type & vscode.FileType.Directory ? uri.fsPath : path.dirname(uri.fsPath);
  }
  const configs = await vscode.workspace.findFiles('**/config.json', '**/{node_modules,.git,.e2e-cache}/**', 200);
  const models = configs.filter((c) => fs.existsSync(path.join(path.dirname(c.fsPath), 'model.safetensors')));
  const browse = { label: '$(folder-opened) Browse…', dir: '' };
  const items = [...models.map((c) => ({ label: vscode.workspace.asRelativePath(path.dirname(c.fsPath)), dir: path.dirname(c.fsPath) })), browse];
  const pick = items.length === 1 ? browse : await vscode.window.showQuickPick(items, { title, placeHolder: 'Model folder (config.json + model.safetensors)' });
  if (!pick) return undefined;
  if (pick.dir) return pick.dir;
  const chosen = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, title, openLabel: 'Use this model' });
  return chosen?.[0]?.fsPath;
}

/** Where the program goes: next to the model folder, named after it. */
function defaultOutput(dir: string): string {
  return path.join(path.dirname(dir), `${path.basename(dir)}.rasp`);
}

async function confirmOutput(out: string): Promise<{ out: string; force: boolean } | undefined> {
  const existing = extractOutputs(out).filter((f) => fs.existsSync(f));
  if (!existing.length) return { out, force: false };
  const answer = await vscode.window.showWarningMessage(
    `${path.basename(existing[0])} already exists. Overwrite it?`,
    { modal: true, detail: `These files will be replaced: ${existing.map((f) => path.basename(f)).join(', ')}.` },
    'Overwrite',
    'Save As…',
  );
  if (answer === 'Overwrite') return { out, force: true };
  if (answer === 'Save As…') {
    const target = await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.file(out), filters: { 'RASP program': ['rasp'] } });
    if (!target) return undefined;
    // The save dialog already asked about replacing an existing file.
    return { out: target.fsPath, force: true };
  }
  return undefined;
}

export async function decompileCommand(jobs: JobRunner, log: vscode.OutputChannel, uri?: vscode.Uri): Promise<void> {
  const started = Date.now();
  const dir = await resolveModelDir(uri, 'Decompile which model?');
  if (!dir) return;
  let info: ModelInfo;
  try {
    info = await jobs.run<ModelInfo>(`Read model ${path.basename(dir)}`, { kind: 'modelInfo', dir });
  } catch (err) {
    showJobError(err, 'Reading the model', log);
    return;
  }
  let task = info.task;
  if (!task) {
    const pick = await vscode.window.showQuickPick(info.knownTasks, {
      title: `Which task was ${path.basename(dir)} trained on?`,
      placeHolder: info.taskProblem ?? 'The model folder names no task',
    });
    if (!pick) return;
    task = pick;
  }
  const target = await confirmOutput(defaultOutput(dir));
  if (!target) return;
  const s = settings();
  const waitedForUser = Date.now() - started;
  let report: ExtractReport;
  try {
    report = await runWithProgress<ExtractReport>(jobs, `Decompiling ${path.basename(dir)} (${task})`, {
      kind: 'extract',
      dir,
      task,
      out: target.out,
      force: target.force,
      seed: s.seed,
      backend: s.backend,
      targetMatch: s.targetMatch,
      samples: s.extractSamples,
      steps: s.extractSteps,
      runs: s.extractRuns,
    });
  } catch (err) {
    showJobError(err, 'Decompiling', log);
    return;
  }
  const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(report.rasp));
  await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.One, preview: false });
  const seconds = (Date.now() - started) / 1000;
  log.appendLine(`decompile: ${seconds.toFixed(1)} s from the command to the opened program (${(waitedForUser / 1000).toFixed(1)} s of it waiting for choices); ${report.statements} statements`);
  await showExtractReport(report);
  void vscode.window.showInformationMessage(
    `Decompiled ${path.basename(dir)} into ${path.basename(report.rasp)}: ${report.statements} statements${report.match !== undefined ? `, match ${(report.match * 100).toFixed(1)}%` : ''} in ${seconds.toFixed(1)} s.`,
  );
}
