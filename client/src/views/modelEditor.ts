// Read-only custom editor for a model folder (opened on its model.safetensors, or on config.json via "Open With"):
// architecture, task, vocabulary, reported accuracy, accuracy by length measured on demand, and "Decompile".
import * as path from 'node:path';
import * as vscode from 'vscode';
import { JobError, type JobRunner } from '../jobs';
import { settings } from '../settings';
import type { AccuracyResult, ModelInfo } from '../workers/protocol';
import { binsSvg } from './plots';
import { escapeHtml, htmlPage } from './webview';

const CSS = `
.actions { margin: 14px 0; }
#status { margin-left: 6px; }
.vocab { max-width: 60em; }
progress { width: 240px; vertical-align: middle; }
`;

const SCRIPT = `
const vscode = acquireVsCodeApi();
const status = document.getElementById('status');
document.getElementById('decompile').addEventListener('click', () => vscode.postMessage({ type: 'decompile' }));
const acc = document.getElementById('accuracy');
acc.addEventListener('click', () => { acc.disabled = true; status.textContent = 'measuring…'; vscode.postMessage({ type: 'accuracy' }); });
window.addEventListener('message', (e) => {
  const m = e.data;
  if (m.type === 'progress') status.textContent = m.text;
  if (m.type === 'accuracy') { acc.disabled = false; status.textContent = ''; document.getElementById('accuracy-result').innerHTML = m.html; }
  if (m.type === 'error') { acc.disabled = false; status.textContent = m.text; status.className = 'error'; }
});
`;

class ModelDocument implements vscode.CustomDocument {
  constructor(readonly uri: vscode.Uri) {}
  dispose(): void {}
}

function infoHtml(info: ModelInfo): string {
  const reported = info.reportedAccuracy?.length
    ? `<h2>Reported accuracy</h2><table><tr><th>lengths</th><th>accuracy</th></tr>${info.reportedAccuracy
        .map((r) => `<tr><td>${r.lengths[0]}–${r.lengths[1]}</td><td class="num">${(r.accuracy * 100).toFixed(1)}%</td></tr>`)
        .join('')}</table>`
    : '';
  return `
<h1>${escapeHtml(path.basename(info.dir))}</h1>
<p class="muted mono">${escapeHtml(info.dir)}</p>
<h2>Architecture</h2>
<table id="architecture">
<tr><th>architecture</th><td>${escapeHtml(info.architecture)}</td></tr>
<tr><th>layers</th><td id="layers">${info.nLayer}</td></tr>
<tr><th>heads</th><td>${info.nHead}</td></tr>
<tr><th>d_model</th><td>${info.nEmbd}</td></tr>
<tr><th>positions</th><td>${info.nPositions}</td></tr>
<tr><th>vocabulary size</th><td>${info.vocabSize}</td></tr>
<tr><th>parameters</th><td>${info.parameters.toLocaleString('en-US')}</td></tr>
<tr><th>weights sha256</th><td class="mono">${escapeHtml(info.sha256.slice(0, 16))}…</td></tr>
</table>
<h2>Task</h2>
<table>
<tr><th>task</th><td id="task">${info.task ? escapeHtml(info.task) : `<span class="error">unknown</span>${info.taskProblem ? ` <span class="muted">(${escapeHtml(info.taskProblem)})</span>` : ''}`}</td></tr>
${info.taskSource ? `<tr><th>from</th><td>${escapeHtml(info.taskSource)}</td></tr>` : ''}
${info.objective ? `<tr><th>objective</th><td>${info.objective === 'bce' ? 'per-token sigmoid (BCE)' : 'next-token cross-entropy'}</td></tr>` : ''}
${info.lengthRange ? `<tr><th>training lengths</th><td>${info.lengthRange[0]}–${info.lengthRange[1]}</td></tr>` : ''}
</table>
<h2>Vocabulary (${info.vocab.length})</h2>
<div class="vocab">${info.vocab.map((t, i) => `<span class="chip" title="id ${i}">${escapeHtml(t)}</span>`).join('')}</div>
${reported}
<h2>Accuracy by length</h2>
<div id="accuracy-result"><p class="muted">Not measured yet: sampled sequences per length bin, scored by the task's oracle.</p></div>
<div class="actions">
<button id="decompile">Decompile…</button>
<button id="accuracy" class="secondary">Measure accuracy by length</button>
<span id="status" class="muted"></span>
</div>`;
}

export class ModelEditorProvider implements vscode.CustomReadonlyEditorProvider<ModelDocument> {
  constructor(private readonly jobs: JobRunner) {}

  openCustomDocument(uri: vscode.Uri): ModelDocument {
    return new ModelDocument(uri);
  }

  async resolveCustomEditor(document: ModelDocument, panel: vscode.WebviewPanel): Promise<void> {
    const dir = path.dirname(document.uri.fsPath);
    panel.webview.options = { enableScripts: true };
    panel.webview.html = htmlPage(panel.webview, { title: 'Model', body: '<p class="muted">Reading the model…</p>' });
    let info: ModelInfo;
    try {
      info = await this.jobs.run<ModelInfo>(`Read model ${path.basename(dir)}`, { kind: 'modelInfo', dir });
    } catch (err) {
      panel.webview.html = htmlPage(panel.webview, {
        title: 'Model',
        body: `<h1>${escapeHtml(path.basename(dir))}</h1><p class="error">${escapeHtml(err instanceof Error ? err.message : String(err))}</p>`,
      });
      return;
    }
    panel.webview.html = htmlPage(panel.webview, { title: path.basename(dir), css: CSS, body: infoHtml(info), script: SCRIPT });
    const cancel = new vscode.CancellationTokenSource();
    panel.onDidDispose(() => cancel.cancel());
    panel.webview.onDidReceiveMessage(async (msg: { type: string }) => {
      if (msg.type === 'decompile') {
        await vscode.commands.executeCommand('rasp.decompileModel', vscode.Uri.file(dir));
      } else if (msg.type === 'accuracy') {
        const s = settings();
        try {
          const result = await this.jobs.run<AccuracyResult>(
            `Accuracy of ${path.basename(dir)}`,
            { kind: 'accuracy', dir, task: info.task, samplesPerBin: s.samplesPerBin, seed: s.seed, backend: s.backend },
            { token: cancel.token, onProgress: (p) => void panel.webview.postMessage({ type: 'progress', text: `${p.stage} ${Math.round(p.fraction * 100)}%` }) },
          );
          const table = `<table id="accuracy-table"><tr><th>lengths</th><th>accuracy</th><th>samples</th></tr>${result.bins
            .map((b) => `<tr><td>${b.lengths[0]}–${b.lengths[1]}</td><td class="num">${(b.value * 100).toFixed(1)}%</td><td class="num">${b.samples}</td></tr>`)
            .join('')}</table>`;
          void panel.webview.postMessage({ type: 'accuracy', html: `<div class="plot">${await binsSvg(result.bins, 'accuracy')}</div>${table}` });
        } catch (err) {
          if (!(err instanceof JobError && err.cancelled)) void panel.webview.postMessage({ type: 'error', text: err instanceof Error ? err.message : String(err) });
        }
      }
    });
  }
}
