// "RASP: Train Model...": a task from the suite, an output folder, training in a worker with progress and cancel;
// the new model opens in the model viewer.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { taskNames } from '../../../server/src/tasks/index';
import { runWithProgress, showJobError, type JobRunner } from '../jobs';
import { settings } from '../settings';
import type { TrainReport } from '../workers/protocol';

export async function trainCommand(jobs: JobRunner, log: vscode.OutputChannel): Promise<void> {
  const task = await vscode.window.showQuickPick(taskNames(), { title: 'Train a model on which task?' });
  if (!task) return;
  const shape = await vscode.window.showInputBox({
    title: `Model shape for ${task}`,
    prompt: 'layers x heads x width (GPT-2, as in the paper\'s folder names such as 1l1h16d)',
    value: '2x2x64',
    validateInput: (v) => (parseShape(v) ? undefined : 'Write three positive integers, e.g. 2x2x64 (width divisible by heads)'),
  });
  const dims = shape ? parseShape(shape) : undefined;
  if (!dims) return;
  const root = vscode.workspace.workspaceFolders?.[0]?.uri;
  const suggested = root ? vscode.Uri.joinPath(root, 'models', task) : undefined;
  const picked = await vscode.window.showSaveDialog({ defaultUri: suggested, title: 'Model folder to create', saveLabel: 'Train here' });
  if (!picked) return;
  const out = picked.fsPath;
  if (fs.existsSync(path.join(out, 'model.safetensors'))) {
    const answer = await vscode.window.showWarningMessage(`${out} already holds a model. Replace it?`, { modal: true }, 'Replace');
    if (answer !== 'Replace') return;
  }
  const s = settings();
  let report: TrainReport;
  try {
    report = await runWithProgress<TrainReport>(jobs, `Training ${task}`, { kind: 'train', task, out, ...dims, steps: s.trainSteps, seed: s.seed, backend: s.backend });
  } catch (err) {
    showJobError(err, 'Training', log);
    return;
  }
  await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(path.join(report.dir, 'model.safetensors')), 'rasp.modelEditor');
  void vscode.window.showInformationMessage(`Trained ${task} for ${report.steps} steps into ${report.dir}.`);
}

export function parseShape(text: string): { layers: number; heads: number; width: number } | undefined {
  const m = /^\s*(\d+)\s*[x×,\s]\s*(\d+)\s*[x×,\s]\s*(\d+)\s*$/i.exec(text);
  if (!m) return undefined;
  const [layers, heads, width] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (layers < 1 || heads < 1 || width < 1 || width % heads !== 0 || layers > 64 || heads > 64 || width > 4096) return undefined;
  return { layers, heads, width };
}
