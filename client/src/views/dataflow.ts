// The program's dataflow graph by layer: one column per model layer (inputs left, logits and prediction right),
// one node per statement, edges from what a line reads. Drawn as SVG here; clicking a node reveals its line.
import * as vscode from 'vscode';
import type { Program, Statement } from '../../../server/src/program/types';
import { statementInputs } from './describe';
import { escapeHtml, htmlPage } from './webview';

interface Node {
  name: string;
  kind: Statement['kind'] | 'input';
  column: number;
  line: number;
  label: string;
  x: number;
  y: number;
}

export function layoutDataflow(program: Program): { nodes: Node[]; edges: [string, string][]; columns: string[] } {
  const depth = new Map<string, number>([
    ['token', 0],
    ['pos', 0],
  ]);
  const byName = new Map(program.statements.map((s) => [s.name, s]));
  const maxLayer = Math.max(-1, ...program.statements.map((s) => s.provenance?.layer ?? -1));
  // Column = 1 + layer when the model says where a line came from, otherwise 1 + the deepest input's layer.
  const column = (s: Statement): number => {
    const known = depth.get(s.name);
    if (known !== undefined) return known;
    let c: number;
    if (s.kind === 'project' || s.kind === 'prediction') c = -1; // placed after the last layer below
    else if (s.provenance && s.provenance.layer >= 0) c = s.provenance.layer + 1;
    else {
      c = 1;
      for (const i of statementInputs(s)) {
        const src = byName.get(i);
        const d = src ? column(src) : (depth.get(i) ?? 0);
        c = Math.max(c, src && src.kind !== 'select' ? d + (s.kind === 'elementwise' ? 0 : 1) : Math.max(d, 1));
      }
    }
    depth.set(s.name, c);
    return c;
  };
  for (const s of program.statements) column(s);
  const lastLayerCol = Math.max(maxLayer + 1, ...[...depth.values()]);
  const cols = new Map<string, number>();
  for (const s of program.statements) {
    const c = depth.get(s.name) ?? 1;
    cols.set(s.name, s.kind === 'project' ? lastLayerCol + 1 : s.kind === 'prediction' ? lastLayerCol + 2 : c);
  }
  const nodes: Node[] = [
    { name: 'token', kind: 'input', column: 0, line: 0, label: 'token', x: 0, y: 0 },
    { name: 'pos', kind: 'input', column: 0, line: 0, label: 'pos', x: 0, y: 0 },
  ];
  for (const s of program.statements) {
    const p = s.provenance;
    const where = p ? (p.mlp ? 'MLP' : p.head !== null ? `h${p.head}` : '') : '';
    nodes.push({ name: s.name, kind: s.kind, column: cols.get(s.name) ?? 1, line: s.line, label: where ? `${s.name} · ${where}` : s.name, x: 0, y: 0 });
  }
  const nCols = Math.max(...nodes.map((n) => n.column)) + 1;
  const perCol = new Array<number>(nCols).fill(0);
  for (const n of nodes) {
    n.x = 20 + n.column * 190;
    n.y = 50 + perCol[n.column]++ * 44;
  }
  const names = new Set(nodes.map((n) => n.name));
  const edges: [string, string][] = [];
  for (const s of program.statements) for (const i of statementInputs(s)) if (names.has(i)) edges.push([i, s.name]);
  const columns = Array.from({ length: nCols }, (_, c) =>
    c === 0 ? 'inputs' : c <= lastLayerCol ? `layer ${c - 1}` : c === lastLayerCol + 1 ? 'logits' : 'output',
  );
  return { nodes, edges, columns };
}

function svgFor(program: Program): string {
  const { nodes, edges, columns } = layoutDataflow(program);
  const at = new Map(nodes.map((n) => [n.name, n]));
  const W = 150, H = 28;
  const width = Math.max(...nodes.map((n) => n.x)) + W + 30;
  const height = Math.max(...nodes.map((n) => n.y)) + H + 30;
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="dataflow graph">`];
  parts.push('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path class="arrowhead" d="M 0 0 L 10 5 L 0 10 z"/></marker></defs>');
  columns.forEach((c, i) => parts.push(`<text class="column" x="${20 + i * 190 + W / 2}" y="24" text-anchor="middle">${escapeHtml(c)}</text>`));
  for (const [from, to] of edges) {
    const a = at.get(from)!, b = at.get(to)!;
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    const back = x2 <= x1;
    const d = back
      ? `M ${a.x + W / 2} ${a.y + H} C ${a.x + W / 2} ${a.y + H + 30}, ${b.x + W / 2} ${b.y - 30}, ${b.x + W / 2} ${b.y}`
      : `M ${x1} ${y1} C ${x1 + 40} ${y1}, ${x2 - 40} ${y2}, ${x2} ${y2}`;
    parts.push(`<path class="edge" d="${d}" marker-end="url(#arrow)"/>`);
  }
  for (const n of nodes) {
    parts.push(
      `<g class="node ${n.kind}" data-line="${n.line}" tabindex="0"><title>${escapeHtml(n.kind === 'input' ? n.name : `${n.kind} ${n.name} (line ${n.line})`)}</title>` +
        `<rect x="${n.x}" y="${n.y}" width="${W}" height="${H}" rx="5"/><text x="${n.x + W / 2}" y="${n.y + H / 2 + 4}" text-anchor="middle">${escapeHtml(n.label)}</text></g>`,
    );
  }
  parts.push('</svg>');
  return parts.join('\n');
}

const CSS = `
svg text { fill: var(--vscode-foreground); font-family: var(--vscode-editor-font-family); font-size: 12px; }
svg text.column { fill: var(--vscode-descriptionForeground); font-family: var(--vscode-font-family); }
.edge { fill: none; stroke: var(--vscode-descriptionForeground); stroke-opacity: 0.6; stroke-width: 1.2; }
.arrowhead { fill: var(--vscode-descriptionForeground); }
.node rect { fill: var(--vscode-editorWidget-background); stroke: var(--vscode-panel-border); stroke-width: 1.5; }
.node.select rect { stroke: var(--vscode-charts-purple); }
.node.aggregate rect { stroke: var(--vscode-charts-blue); }
.node.elementwise rect { stroke: var(--vscode-charts-orange); }
.node.project rect { stroke: var(--vscode-charts-green); }
.node.prediction rect { stroke: var(--vscode-charts-red); stroke-width: 2.5; }
.node.input rect { stroke: var(--vscode-charts-yellow); }
.node:not(.input) { cursor: pointer; }
.node:hover rect, .node:focus rect { fill: var(--vscode-list-hoverBackground); }
.legend span { margin-right: 12px; }
`;

const SCRIPT = `
const vscode = acquireVsCodeApi();
for (const g of document.querySelectorAll('.node:not(.input)')) {
  const go = () => vscode.postMessage({ type: 'reveal', line: Number(g.getAttribute('data-line')) });
  g.addEventListener('click', go);
  g.addEventListener('keydown', (e) => { if (e.key === 'Enter') go(); });
}
`;

const panels = new Map<string, vscode.WebviewPanel>();

export function showDataflow(doc: vscode.TextDocument, program: Program): void {
  const key = doc.uri.toString();
  let panel = panels.get(key);
  const title = `Dataflow: ${vscode.workspace.asRelativePath(doc.uri)}`;
  if (!panel) {
    panel = vscode.window.createWebviewPanel('rasp.dataflow', title, { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, { enableScripts: true });
    panels.set(key, panel);
    panel.onDidDispose(() => panels.delete(key));
    panel.webview.onDidReceiveMessage(async (msg: { type: string; line: number }) => {
      if (msg.type !== 'reveal' || !(msg.line > 0)) return;
      const editor = await vscode.window.showTextDocument(doc, vscode.ViewColumn.One);
      const pos = new vscode.Position(msg.line - 1, 0);
      editor.selection = new vscode.Selection(pos, pos);
      editor.revealRange(new vscode.Range(pos, pos), vscode.TextEditorRevealType.InCenter);
    });
  }
  panel.webview.html = htmlPage(panel.webview, {
    title,
    css: CSS,
    body: `<h1>${escapeHtml(program.header.name ?? title)}</h1>
<p class="muted legend">${program.statements.length} statements by layer. <span>select</span><span>aggregate</span><span>element-wise / MLP</span><span>project</span> — click a node to go to its line.</p>
<div class="graph">${svgFor(program)}</div>`,
    script: SCRIPT,
  });
  panel.reveal(undefined, true);
}
