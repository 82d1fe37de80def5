// One webview panel for matrices: op matrices ("Show heatmap") and a program's selector/attention matrices on the
// example input ("Show attention on example"). Drawn on canvases by a nonce'd script; hovering a cell focuses its
// row and column and shows the value, clicking locks the focus (click again to unlock).
import * as vscode from 'vscode';
import { escapeHtml, htmlPage, jsonScript } from './webview';

export interface PanelMatrix {
  id: string;
  title: string;
  subtitle?: string;
  rowLabels: string[];
  colLabels: string[];
  rowTitle: string;
  colTitle: string;
  /** Row-major values; NaN = masked (drawn empty). */
  values: number[];
  /** The matrix the user asked for; outlined and scrolled into view. */
  focus?: boolean;
}

const SCRIPT = `
(function () {
  const data = JSON.parse(document.getElementById('matrices').textContent);
  const css = getComputedStyle(document.body);
  const fg = css.getPropertyValue('--vscode-foreground').trim() || '#ccc';
  const accent = css.getPropertyValue('--vscode-focusBorder').trim() || '#0078d4';
  const pos = css.getPropertyValue('--vscode-charts-blue').trim() || '#3794ff';
  const neg = css.getPropertyValue('--vscode-charts-red').trim() || '#f14c4c';
  const font = css.getPropertyValue('--vscode-editor-font-family').trim() || 'monospace';
  function rgb(hex) {
    const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})/i.exec(hex);
    return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : [55, 148, 255];
  }
  const posRgb = rgb(pos), negRgb = rgb(neg);
  for (const m of data) {
    const card = document.getElementById('card-' + m.id);
    const canvas = card.querySelector('canvas');
    const info = card.querySelector('.info');
    const R = m.rowLabels.length, C = m.colLabels.length;
    const cell = Math.max(6, Math.min(28, Math.floor(520 / Math.max(R, C, 1))));
    const left = 8 + 7 * Math.min(12, Math.max(...m.rowLabels.map((s) => s.length), 1));
    const top = 8 + 7 * Math.min(12, Math.max(...m.colLabels.map((s) => s.length), 1));
    canvas.width = left + C * cell + 8; canvas.height = top + R * cell + 8;
    let maxAbs = 0;
    for (const v of m.values) if (Number.isFinite(v)) maxAbs = Math.max(maxAbs, Math.abs(v));
    let locked = null;
    function draw(focus) {
      const g = canvas.getContext('2d');
      g.clearRect(0, 0, canvas.width, canvas.height);
      g.font = Math.min(12, Math.max(8, cell - 2)) + 'px ' + font;
      for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) {
        const v = m.values[r * C + c];
        const x = left + c * cell, y = top + r * cell;
        if (!Number.isFinite(v)) continue;
        const t = maxAbs ? Math.abs(v) / maxAbs : 0;
        const [cr, cg, cb] = v < 0 ? negRgb : posRgb;
        const dim = focus && focus.r !== r && focus.c !== c ? 0.35 : 1;
        g.fillStyle = 'rgba(' + cr + ',' + cg + ',' + cb + ',' + (0.08 + 0.92 * t) * dim + ')';
        g.fillRect(x, y, cell - 1, cell - 1);
      }
      g.fillStyle = fg;
      const every = Math.ceil(10 / cell);
      g.textAlign = 'right'; g.textBaseline = 'middle';
      for (let r = 0; r < R; r += every) g.fillText(m.rowLabels[r], left - 4, top + r * cell + cell / 2);
      g.save();
      for (let c = 0; c < C; c += every) {
        g.setTransform(1, 0, 0, 1, left + c * cell + cell / 2, top - 4); g.rotate(-Math.PI / 2);
        g.textAlign = 'left'; g.fillText(m.colLabels[c], 0, 0);
      }
      g.restore();
      if (focus) {
        g.strokeStyle = accent; g.lineWidth = 2;
        g.strokeRect(left + focus.c * cell - 1, top + focus.r * cell - 1, cell + 1, cell + 1);
      }
    }
    function cellAt(ev) {
      const b = canvas.getBoundingClientRect();
      const x = (ev.clientX - b.left) * canvas.width / b.width - left, y = (ev.clientY - b.top) * canvas.height / b.height - top;
      const c = Math.floor(x / cell), r = Math.floor(y / cell);
      return r >= 0 && r < R && c >= 0 && c < C ? { r, c } : null;
    }
    function describe(f) {
      if (!f) return locked ? '' : 'Hover a cell to focus it; click to lock.';
      const v = m.values[f.r * C + f.c];
      return m.rowTitle + ' ' + m.rowLabels[f.r] + ', ' + m.colTitle + ' ' + m.colLabels[f.c] + ': ' +
        (Number.isFinite(v) ? v.toPrecision(4) : 'masked') + (locked ? '  (locked; click to unlock)' : '');
    }
    canvas.addEventListener('mousemove', (ev) => { if (locked) return; const f = cellAt(ev); draw(f); info.textContent = describe(f); });
    canvas.addEventListener('mouseleave', () => { if (locked) return; draw(null); info.textContent = describe(null); });
    canvas.addEventListener('click', (ev) => {
      const f = cellAt(ev);
      locked = locked || !f ? null : f;
      draw(locked || f); info.textContent = describe(locked || f);
      card.classList.toggle('locked', !!locked);
    });
    draw(null); info.textContent = describe(null);
    if (m.focus) card.scrollIntoView({ block: 'start' });
  }
})();
`;

const CSS = `
.card { border: 1px solid var(--vscode-panel-border); border-radius: 4px; padding: 6px 10px 10px; margin: 10px 0; display: inline-block; vertical-align: top; margin-right: 12px; }
.card.focus { border-color: var(--vscode-focusBorder); }
.card.locked { box-shadow: 0 0 0 1px var(--vscode-focusBorder); }
.card h3 { margin: 2px 0; font-size: 1em; }
.info { min-height: 1.4em; color: var(--vscode-descriptionForeground); font-family: var(--vscode-editor-font-family); }
canvas { display: block; margin-top: 4px; cursor: crosshair; }
`;

let panel: vscode.WebviewPanel | undefined;

export function showMatrices(title: string, intro: string, matrices: PanelMatrix[]): vscode.WebviewPanel {
  if (!panel) {
    panel = vscode.window.createWebviewPanel('rasp.matrices', title, { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, { enableScripts: true });
    panel.onDidDispose(() => (panel = undefined));
  }
  panel.title = title;
  const cards = matrices
    .map(
      (m) => `<div class="card${m.focus ? ' focus' : ''}" id="card-${escapeHtml(m.id)}"><h3>${escapeHtml(m.title)}</h3>` +
        `${m.subtitle ? `<div class="muted">${escapeHtml(m.subtitle)}</div>` : ''}<canvas aria-label="${escapeHtml(m.title)}"></canvas><div class="info"></div></div>`,
    )
    .join('\n');
  panel.webview.html = htmlPage(panel.webview, {
    title,
    css: CSS,
    body: `<h1>${escapeHtml(title)}</h1><p class="muted">${escapeHtml(intro)}</p>${cards}${jsonScript('matrices', matrices)}`,
    script: SCRIPT,
  });
  panel.reveal(vscode.ViewColumn.Beside, true);
  return panel;
}
