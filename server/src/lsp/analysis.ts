// Per-document analysis for the language server: the builder's result (cached per parse), the sidecar (cached
// per file and mtime) and position lookups. Everything here is synchronous and fast except the sidecar read.
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { LangiumDocument } from 'langium';
import { URI } from 'langium';
import type { Position, Range } from 'vscode-languageserver-types';
import { buildRecovered, type BuildOptions, type BuildResult, type StatementInfo, type SymbolOccurrence } from '../language/build';
import type { RaspFile } from '../language/generated/ast';
import { readSafetensorsFile } from '../model/safetensors';
import { fromSidecarTensors } from '../program/sidecar';

const results = new WeakMap<RaspFile, BuildResult>();
const sidecars = new Map<string, { mtimeMs: number; data: NonNullable<BuildOptions['sidecar']> } | { mtimeMs: number; error: string }>();

export function documentPath(document: LangiumDocument): string | undefined {
  return document.uri.scheme === 'file' ? document.uri.fsPath : undefined;
}

export function hasSyntaxErrors(document: LangiumDocument): boolean {
  return document.parseResult.lexerErrors.length > 0 || document.parseResult.parserErrors.length > 0;
}

/** The sidecar named in the header, read from disk (undefined when there is none); errors become a message. */
export async function loadSidecar(document: LangiumDocument, weights: string | undefined): Promise<BuildOptions['sidecar'] | string | undefined> {
  const path = documentPath(document);
  if (!path || weights === undefined) return undefined;
  const file = resolve(dirname(path), weights);
  let mtimeMs: number;
  try {
    mtimeMs = (await stat(file)).mtimeMs;
  } catch {
    return `the weights file ${weights} does not exist`;
  }
  const cached = sidecars.get(file);
  if (cached && cached.mtimeMs === mtimeMs) return 'data' in cached ? cached.data : cached.error;
  try {
    const data = fromSidecarTensors(await readSafetensorsFile(file), file);
    sidecars.set(file, { mtimeMs, data });
    return data;
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    sidecars.set(file, { mtimeMs, error });
    return error;
  }
}

/** Builds (with the sidecar when readable) and caches the result for the current parse of the document. */
export async function analyzeWithSidecar(document: LangiumDocument): Promise<{ result: BuildResult; sidecarError?: string }> {
  const root = document.parseResult.value as RaspFile;
  const path = documentPath(document);
  const first = buildRecovered(root, path ? { file: path } : {}, hasSyntaxErrors(document));
  const sidecar = await loadSidecar(document, first.partial.header.weights);
  if (typeof sidecar === 'string') {
    results.set(root, first);
    return { result: first, sidecarError: sidecar };
  }
  const result = sidecar ? buildRecovered(root, { ...(path ? { file: path } : {}), sidecar }, hasSyntaxErrors(document)) : first;
  results.set(root, result);
  return { result };
}

/** The cached result, or a fresh build without the sidecar (hover and friends must not wait for I/O). */
export function analyze(document: LangiumDocument): BuildResult {
  const root = document.parseResult.value as RaspFile;
  let result = results.get(root);
  if (!result) {
    const path = documentPath(document);
    result = buildRecovered(root, path ? { file: path } : {}, hasSyntaxErrors(document));
    results.set(root, result);
  }
  return result;
}

export function contains(range: Range, pos: Position): boolean {
  const after = pos.line > range.start.line || (pos.line === range.start.line && pos.character >= range.start.character);
  const before = pos.line < range.end.line || (pos.line === range.end.line && pos.character <= range.end.character);
  return after && before;
}

export function occurrenceAt(result: BuildResult, pos: Position): SymbolOccurrence | undefined {
  return result.occurrences.find((o) => contains(o.range, pos));
}

export function statementAt(result: BuildResult, pos: Position): StatementInfo | undefined {
  return result.statements.find((s) => {
    const r = s.node.$cstNode?.range;
    return r !== undefined && pos.line >= r.start.line && pos.line <= r.end.line;
  });
}

/** All occurrences (definition and uses) of the symbol at `pos`. */
export function occurrencesOf(result: BuildResult, occ: SymbolOccurrence): SymbolOccurrence[] {
  const isMatrix = occ.kind === 'matrix';
  return result.occurrences.filter((o) => o.name === occ.name && (o.kind === 'matrix') === isMatrix);
}

export function uriOf(document: LangiumDocument): string {
  return document.uri.toString();
}

export { URI };
