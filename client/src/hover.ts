// Adds the model-facing part of a line's hover to the language server's hover (client middleware): where the line
// came from in words, its source neurons, a small heatmap of its op matrix, and links to the larger views. The
// heatmap goes right after the summary and the provenance, where it is seen without scrolling (views/hoverLayout.ts).
import * as vscode from 'vscode';
import type { Statement } from '../../server/src/program/types';
import { programFor, statementAtLine } from './programs';
import { describePath } from '../../server/src/program/provenance';
import { componentInWords } from './views/describe';
import { opMatrixOf } from './views/opMatrices';
import { arrangeStatementHover, provenanceLine, sizedImage } from './views/hoverLayout';
import { heatmapSvg, svgDataUri } from './views/plots';

const MAX_NEURONS = 12;

function commandLink(title: string, command: string, args: unknown[]): string {
  return `[${title}](command:${command}?${encodeURIComponent(JSON.stringify(args))} "${title}")`;
}

export function provenanceMarkdown(stmt: Statement): string[] {
  const out: string[] = [];
  const p = stmt.provenance;
  if (!p) return out;
  out.push(`**From the model:** ${componentInWords(p)}`);
  const paths: string[] = [];
  if (p.paths.q) paths.push(`query reads ${describePath(p.paths.q)}`);
  if (p.paths.k) paths.push(`key reads ${describePath(p.paths.k)}`);
  if (p.paths.v) paths.push(`value reads ${describePath(p.paths.v)}`);
  if (p.paths.input) paths.push(`input reads ${describePath(p.paths.input)}`);
  if (paths.length) out.push(paths.map((s) => `- ${s}`).join('\n'));
  if (p.neurons?.length) {
    const sorted = [...p.neurons].sort((a, b) => (b.score ?? 0) - (a.score ?? 0));
    const shown = sorted
      .slice(0, MAX_NEURONS)
      .map((n) => (n.score !== undefined ? `#${n.index} (${(n.score * 100).toFixed(0)}%)` : `#${n.index}`));
    const more = sorted.length > MAX_NEURONS ? ` and ${sorted.length - MAX_NEURONS} more` : '';
    out.push(`**Source neurons** (layer ${p.layer} MLP): ${shown.join(', ')}${more}`);
  }
  if (p.dims?.length) out.push(`Head dimensions used: ${p.dims.join(', ')}${p.dimsMore ? ` and ${p.dimsMore} more` : ''}`);
  return out;
}

interface Extras {
  stmt: Statement;
  /** The op matrix heatmap (markdown image), when the line has one and hovers show them. */
  picture?: string;
  /** "Show heatmap" / "Show attention on example" links. */
  links?: string;
}

/** The hovered statement's picture and links. */
async function extrasAt(doc: vscode.TextDocument, position: vscode.Position): Promise<Extras | undefined> {
  const program = await programFor(doc);
  if (!program) return undefined;
  // Like the server's hover: a name under the cursor means that statement, anywhere else the line's own statement.
  const wordRange = doc.getWordRangeAtPosition(position);
  const word = wordRange ? doc.getText(wordRange) : undefined;
  const stmt = (word ? program.statements.find((st) => st.name === word) : undefined) ?? statementAtLine(program, doc, position.line);
  if (!stmt) return undefined;
  const out: Extras = { stmt };
  const settings = vscode.workspace.getConfiguration('rasp');
  const links: string[] = [];
  const target = { uri: doc.uri.toString(), name: stmt.name };
  if (stmt.kind === 'select' || stmt.kind === 'project') {
    if (settings.get<boolean>('hover.heatmaps', true)) {
      try {
        const m = opMatrixOf(program, stmt);
        if (m) {
          const dark = vscode.window.activeColorTheme.kind === vscode.ColorThemeKind.Dark || vscode.window.activeColorTheme.kind === vscode.ColorThemeKind.HighContrast;
          const { svg, truncated } = await heatmapSvg(m.matrix, {
            rowLabels: m.rowLabels,
            colLabels: m.colLabels,
            rowTitle: m.rowTitle,
            colTitle: m.colTitle,
            textColor: dark ? '#cccccc' : '#333333',
            maxSide: 120,
          });
          out.picture = `${sizedImage(`op matrix of ${stmt.name}`, svgDataUri(svg), svg)}${truncated ? '\n\n*(first rows/columns shown)*' : ''}`;
        }
      } catch {
        // A line whose matrix cannot be built yet (e.g. while typing) simply has no picture.
      }
    }
    links.push(commandLink('Show heatmap', 'rasp.showHeatmap', [target]));
  }
  if (stmt.kind === 'select' || stmt.kind === 'aggregate') links.push(commandLink('Show attention on example', 'rasp.showAttention', [target]));
  if (links.length) out.links = links.join(' · ');
  return out;
}

function trusted(text: string): vscode.MarkdownString {
  const md = new vscode.MarkdownString(text);
  md.isTrusted = { enabledCommands: ['rasp.showHeatmap', 'rasp.showAttention'] };
  md.supportHtml = false;
  return md;
}

/** `withProvenance`: also describe where the line came from (when the language server's hover did not). */
export async function hoverExtras(doc: vscode.TextDocument, position: vscode.Position, withProvenance: boolean): Promise<vscode.MarkdownString | undefined> {
  const extras = await extrasAt(doc, position);
  if (!extras) return undefined;
  const parts = [...(withProvenance ? provenanceMarkdown(extras.stmt) : []), ...(extras.picture ? [extras.picture] : []), ...(extras.links ? [extras.links] : [])];
  return parts.length ? trusted(parts.join('\n\n')) : undefined;
}

function markdownOf(c: vscode.MarkdownString | vscode.MarkedString): string | undefined {
  if (typeof c === 'string') return c;
  return 'language' in c ? undefined : c.value;
}

/**
 * Merges the server's hover with the extras, keeping the server's range. A statement hover is re-ordered so the
 * picture follows the summary and the provenance (views/hoverLayout.ts); anything else gets the extras appended.
 */
export async function mergeHover(
  doc: vscode.TextDocument,
  position: vscode.Position,
  server: vscode.Hover | null | undefined,
): Promise<vscode.Hover | undefined> {
  if (!server) {
    const own = await hoverExtras(doc, position, true).catch(() => undefined);
    return own ? new vscode.Hover([own]) : undefined;
  }
  let extras: Extras | undefined;
  try {
    extras = await extrasAt(doc, position);
  } catch {
    extras = undefined;
  }
  const contents = [...server.contents];
  if (!extras || (!extras.picture && !extras.links)) return new vscode.Hover(contents, server.range);
  const added = [...(extras.picture ? [extras.picture] : []), ...(extras.links ? [extras.links] : [])];
  const text = contents.length === 1 ? markdownOf(contents[0]) : undefined;
  const top = extras.stmt.provenance ? [provenanceLine(extras.stmt.provenance)] : [];
  const arranged = text !== undefined ? arrangeStatementHover(text, top, added) : undefined;
  if (arranged !== undefined) return new vscode.Hover([trusted(arranged)], server.range);
  return new vscode.Hover([...contents, trusted(added.join('\n\n'))], server.range);
}
