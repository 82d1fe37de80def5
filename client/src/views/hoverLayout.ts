// The order of a statement's hover (no vscode imports, so tests run it in Node). VS Code caps a hover at about
// 250 px before it scrolls, and the language server's text (what the line computes, its op, basis, provenance with
// head dimensions and neurons) fills that alone; a picture appended after it is never seen. So the hover opens with
// the summary and where the line came from in one line, then the picture and the links, and only then the details
// (the server's full provenance among them).
import { describePath } from '../../../server/src/program/provenance';
import type { Provenance } from '../../../server/src/program/types';
import { componentInWords } from './describe';

/** How the language server separates the sections of a statement hover (server/src/lsp/hover.ts). */
export const SECTION_SEPARATOR = '\n\n---\n\n';

/** Tallest picture shown in a hover (px); taller ones are scaled down, keeping their aspect ratio. */
export const HOVER_PICTURE_MAX_HEIGHT = 120;

/** Where a line came from, in one line: `**From** layer 0 head 1 · query: token · key: position`. */
export function provenanceLine(p: Provenance): string {
  const names: Record<string, string> = { q: 'query', k: 'key', v: 'value', input: 'input' };
  const paths = Object.entries(p.paths)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([role, path]) => `${names[role] ?? role}: ${describePath(path)}`);
  return [`**From** ${componentInWords(p)}`, ...paths].join(' · ');
}

/**
 * The server's statement hover re-ordered around `top` (a one-line provenance) and `extras` (a picture and/or
 * links, markdown): summary paragraph, top, extras; then the rest of the summary section and the other sections,
 * the server's full provenance (`**From** ...` section) last. Undefined when the server text is not a statement hover
 * (the caller then appends the extras as before).
 */
export function arrangeStatementHover(server: string, top: string[], extras: string[]): string | undefined {
  const sections = server.split(SECTION_SEPARATOR);
  const first = sections[0];
  // describeStatement opens with "**select** `s1`: ..." (or aggregate, project, ...)
  if (!/^\*\*[a-z-]+\*\*/.test(first)) return undefined;
  const cut = first.indexOf('\n\n');
  const summary = cut < 0 ? first : first.slice(0, cut);
  const details = cut < 0 ? '' : first.slice(cut + 2).trim();
  const rest = sections.slice(1);
  const provenance = rest.find((s) => s.startsWith('**From** '));
  const others = rest.filter((s) => s !== provenance);
  // Without a one-line version the server's provenance itself goes up.
  const head = top.length ? top : provenance ? [provenance] : [];
  const opening = [summary, ...head, ...extras].filter((e) => e.length > 0).join('\n\n');
  const closing = [...(details ? [details] : []), ...others, ...(top.length && provenance ? [provenance] : [])];
  return closing.length ? [opening, ...closing].join(SECTION_SEPARATOR) : opening;
}

/** A markdown image of an SVG no taller than `maxHeight` (VS Code reads `|width=..,height=..` after the link). */
export function sizedImage(alt: string, dataUri: string, svg: string, maxHeight = HOVER_PICTURE_MAX_HEIGHT): string {
  const root = /<svg\b[^>]*>/.exec(svg)?.[0] ?? '';
  const width = Number(/\swidth="([\d.]+)"/.exec(root)?.[1]);
  const height = Number(/\sheight="([\d.]+)"/.exec(root)?.[1]);
  if (!(width > 0) || !(height > 0) || height <= maxHeight) return `![${alt}](${dataUri})`;
  return `![${alt}](${dataUri}|width=${Math.round((width * maxHeight) / height)},height=${maxHeight})`;
}
