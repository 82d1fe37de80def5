// Shared webview scaffolding: every panel gets a strict Content-Security-Policy (no inline code without the
// page's nonce, no remote loads) and is themed only through VS Code's CSS variables.
import { randomBytes } from 'node:crypto';
import type * as vscode from 'vscode';

export function nonce(): string {
  return randomBytes(18).toString('base64').replace(/[^A-Za-z0-9]/g, '');
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

/** Base styles shared by all panels. */
const BASE_CSS = `
body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); color: var(--vscode-foreground);
  background: var(--vscode-editor-background); padding: 0 16px 24px; line-height: 1.45; }
h1 { font-size: 1.4em; font-weight: 600; margin: 16px 0 4px; }
h2 { font-size: 1.1em; font-weight: 600; margin: 20px 0 6px; border-bottom: 1px solid var(--vscode-panel-border); padding-bottom: 2px; }
.muted { color: var(--vscode-descriptionForeground); }
table { border-collapse: collapse; margin: 4px 0; }
th, td { text-align: left; padding: 2px 12px 2px 0; vertical-align: top; }
th { color: var(--vscode-descriptionForeground); font-weight: normal; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: var(--vscode-editor-font-family); font-size: var(--vscode-editor-font-size); }
button { background: var(--vscode-button-background); color: var(--vscode-button-foreground); border: none;
  padding: 5px 14px; cursor: pointer; font-family: inherit; font-size: inherit; border-radius: 2px; margin-right: 8px; }
button:hover { background: var(--vscode-button-hoverBackground); }
button.secondary { background: var(--vscode-button-secondaryBackground); color: var(--vscode-button-secondaryForeground); }
button:disabled { opacity: 0.5; cursor: default; }
.chip { display: inline-block; font-family: var(--vscode-editor-font-family); border: 1px solid var(--vscode-panel-border);
  border-radius: 3px; padding: 0 5px; margin: 2px 3px 2px 0; background: var(--vscode-textCodeBlock-background); }
.error { color: var(--vscode-errorForeground); }
.bar { display: inline-block; height: 0.8em; background: var(--vscode-charts-blue); vertical-align: middle; }
.plot svg { max-width: 100%; height: auto; }
.plot svg text { fill: var(--vscode-foreground); }
.plot svg .role-axis-domain line, .plot svg .role-axis-tick line, .plot svg .role-axis-domain path { stroke: var(--vscode-descriptionForeground); }
.plot svg .role-axis-grid line { stroke: var(--vscode-panel-border); }
a { color: var(--vscode-textLink-foreground); }
`;

export function htmlPage(
  webview: vscode.Webview,
  options: { title: string; body: string; css?: string; script?: string },
): string {
  const n = nonce();
  const csp = [
    "default-src 'none'",
    `img-src ${webview.cspSource} data:`,
    `style-src ${webview.cspSource} 'nonce-${n}'`,
    `script-src 'nonce-${n}'`,
    `font-src ${webview.cspSource}`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>${escapeHtml(options.title)}</title>
<style nonce="${n}">${BASE_CSS}${options.css ?? ''}</style>
</head><body>
${options.body}
${options.script ? `<script nonce="${n}">${options.script}</script>` : ''}
</body></html>`;
}

/** Embeds data for a page script without letting it close the script element. */
export function jsonScript(id: string, data: unknown): string {
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  return `<script type="application/json" id="${id}">${json}</script>`;
}
