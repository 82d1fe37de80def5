// The extraction report: where the emitted program sits on the sparsity search's Pareto frontier (edges kept vs
// match accuracy) and how well it matches the model per length bin; plots are vega SVG, recoloured by the theme.
import * as vscode from 'vscode';
import type { CheckReport, ExtractReport } from '../workers/protocol';
import { binsSvg, frontierSvg } from './plots';
import { escapeHtml, htmlPage } from './webview';

let reportPanel: vscode.WebviewPanel | undefined;
let lastReport: ExtractReport | undefined;

export function lastExtractReport(): ExtractReport | undefined {
  return lastReport;
}

function binsTable(bins: ExtractReport['bins'], header: string): string {
  return `<table><tr><th>lengths</th><th>${escapeHtml(header)}</th><th>samples</th><th></th></tr>${bins
    .map(
      (b) =>
        `<tr><td>${b.lengths[0]}–${b.lengths[1]}</td><td class="num">${(b.value * 100).toFixed(1)}%</td><td class="num">${b.samples}</td>` +
        `<td><span class="bar" style-width="${Math.round(b.value * 100)}"></span></td></tr>`,
    )
    .join('')}</table>`;
}

// Bars get their width from a data attribute in a nonce'd script (inline style attributes are blocked by the CSP).
const BAR_SCRIPT = `for (const b of document.querySelectorAll('.bar[style-width]')) b.style.width = (Number(b.getAttribute('style-width')) * 1.2) + 'px';`;

export async function showExtractReport(report: ExtractReport): Promise<vscode.WebviewPanel> {
  lastReport = report;
  if (!reportPanel) {
    reportPanel = vscode.window.createWebviewPanel('rasp.report', 'Extraction report', { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, { enableScripts: true });
    reportPanel.onDidDispose(() => (reportPanel = undefined));
  }
  const frontier = report.points.length ? `<div class="plot">${await frontierSvg(report.points, report.targetMatch)}</div>` : '<p class="muted">The decompiler reported no search runs.</p>';
  const verdict = report.pruned
    ? ''
    : '<p class="error">No pruned program kept the target match accuracy; the faithful (unpruned) program was opened instead.</p>';
  const bins = report.bins.length ? `<div class="plot">${await binsSvg(report.bins, 'match accuracy')}</div>${binsTable(report.bins, 'match')}` : '<p class="muted">No per-length match was reported.</p>';
  const details = Object.entries(report.details)
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td class="mono">${escapeHtml(String(v))}</td></tr>`)
    .join('');
  reportPanel.title = `Report: ${report.rasp.split(/[\\/]/).pop()}`;
  reportPanel.webview.html = htmlPage(reportPanel.webview, {
    title: 'Extraction report',
    body: `<h1>Extraction report</h1>
<table>
<tr><th>task</th><td>${escapeHtml(report.task)}</td></tr>
<tr><th>model</th><td class="mono">${escapeHtml(report.model)}</td></tr>
<tr><th>program</th><td class="mono">${escapeHtml(report.rasp)}</td></tr>
<tr><th>statements</th><td>${report.statements}</td></tr>
${report.match !== undefined ? `<tr><th>match accuracy</th><td id="match">${(report.match * 100).toFixed(1)}%</td></tr>` : ''}
<tr><th>time</th><td>${report.seconds.toFixed(1)} s</td></tr>
</table>
${verdict}
<h2>Pareto frontier: edges kept vs match accuracy</h2>
${frontier}
<h2>Match accuracy by length</h2>
${bins}
${details ? `<h2>Details</h2><table>${details}</table>` : ''}`,
    script: BAR_SCRIPT,
  });
  reportPanel.reveal(undefined, true);
  return reportPanel;
}

/** The first disagreement, located: which statement and why (server/src/check/locate.ts). */
function firstDisagreementHtml(report: CheckReport): string {
  const f = report.firstDisagreement;
  if (!f) return '';
  const where = f.statement.line ? `<a href="#" data-line="${f.statement.line}">${escapeHtml(f.statement.name)} (line ${f.statement.line})</a>` : escapeHtml(f.statement.name);
  return `<h2>First disagreeing statement</h2>
<p id="first">${where}: ${escapeHtml(f.reason)}.</p>
<p>Input <span class="mono">${escapeHtml(f.sequence)}</span>, position ${f.position}.</p>`;
}

let checkPanel: vscode.WebviewPanel | undefined;
let checkMessages: vscode.Disposable | undefined;

export async function showCheckReport(report: CheckReport, onOpenLine: (line: number) => void): Promise<void> {
  if (!checkPanel) {
    checkPanel = vscode.window.createWebviewPanel('rasp.check', 'Check', { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, { enableScripts: true });
    checkPanel.onDidDispose(() => {
      checkPanel = undefined;
      checkMessages?.dispose();
      checkMessages = undefined;
    });
  }
  // One listener per panel: each check replaces the last one's (it opens lines of the latest program).
  checkMessages?.dispose();
  checkMessages = checkPanel.webview.onDidReceiveMessage((m: { line: number }) => onOpenLine(m.line));
  const rows = report.disagreements
    .slice(0, 200)
    .map(
      (d) =>
        `<tr><td class="mono">${escapeHtml(d.input)}</td><td class="num">${d.position}</td><td${d.reason ? ` title="${escapeHtml(d.reason)}"` : ''}>${
          d.line ? `<a href="#" data-line="${d.line}">${escapeHtml(d.statementName ?? `line ${d.line}`)}</a>` : escapeHtml(d.statementName ?? '—')
        }</td></tr>`,
    )
    .join('');
  checkPanel.title = `Check: ${report.rasp.split(/[\\/]/).pop()}`;
  checkPanel.webview.html = htmlPage(checkPanel.webview, {
    title: 'Check',
    body: `<h1>Program vs model</h1>
<p><span class="mono">${escapeHtml(report.rasp)}</span> against <span class="mono">${escapeHtml(report.model)}</span>:
match accuracy <b id="match">${(report.match * 100).toFixed(1)}%</b></p>
<div class="plot">${await binsSvg(report.bins, 'match accuracy')}</div>
${binsTable(report.bins, 'match')}
${firstDisagreementHtml(report)}
<h2>Disagreements (${report.disagreements.length})</h2>
${rows ? `<table><tr><th>input</th><th>position</th><th>first disagreeing statement</th></tr>${rows}</table>` : '<p>None: the program decides like the model on every sampled sequence.</p>'}`,
    script: `${BAR_SCRIPT}
const vscode = acquireVsCodeApi();
for (const a of document.querySelectorAll('a[data-line]')) a.addEventListener('click', (e) => { e.preventDefault(); vscode.postMessage({ line: Number(a.getAttribute('data-line')) }); });`,
  });
  checkPanel.reveal(undefined, true);
}
