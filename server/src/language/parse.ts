// Text -> AST -> Program without the language server: one shared Langium parser (core services only) used by
// the CLI, the loader, the decompiler's round-trip check and tests.
import { EmptyFileSystem, inject, type LangiumCoreServices } from 'langium';
import { createDefaultCoreModule, createDefaultSharedCoreModule } from 'langium';
import type { Range } from 'vscode-languageserver-types';
import { RaspGeneratedModule, RaspGeneratedSharedModule } from './generated/module';
import type { RaspFile } from './generated/ast';
import { buildRecovered, type BuildDiagnostic, type BuildOptions, type BuildResult } from './build';

let core: LangiumCoreServices | undefined;

/** Langium core services for the RASP grammar (created once). */
export function raspCoreServices(): LangiumCoreServices {
  if (!core) {
    const shared = inject(createDefaultSharedCoreModule(EmptyFileSystem), RaspGeneratedSharedModule);
    core = inject(createDefaultCoreModule({ shared }), RaspGeneratedModule);
    shared.ServiceRegistry.register(core);
  }
  return core;
}

/** Maps offsets to 0-based line/character positions. */
export class LineIndex {
  private readonly starts: number[] = [0];
  constructor(readonly text: string) {
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.starts.push(i + 1);
  }
  position(offset: number): { line: number; character: number } {
    const o = Math.max(0, Math.min(offset, this.text.length));
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= o) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo, character: o - this.starts[lo] };
  }
  range(start: number, end: number): Range {
    return { start: this.position(start), end: this.position(Math.max(start, end)) };
  }
}

export interface ParsedText {
  root: RaspFile;
  /** Lexer and parser errors. */
  syntax: BuildDiagnostic[];
  build: BuildResult;
}

/** Syntax errors of a Langium parse result, with 0-based ranges. */
export function syntaxDiagnostics(
  text: string,
  lexerErrors: readonly { offset: number; length: number; message: string }[],
  parserErrors: readonly { message: string; token: { startOffset: number; endOffset?: number; image: string } }[],
): BuildDiagnostic[] {
  const lines = new LineIndex(text);
  const out: BuildDiagnostic[] = [];
  for (const e of lexerErrors) {
    out.push({ severity: 'error', message: e.message, range: lines.range(e.offset, e.offset + e.length) });
  }
  for (const e of parserErrors) {
    const start = Number.isFinite(e.token.startOffset) ? e.token.startOffset : text.length;
    const end = Number.isFinite(e.token.endOffset) ? (e.token.endOffset as number) + 1 : start;
    out.push({ severity: 'error', message: e.message, range: lines.range(start, end) });
  }
  return out;
}

/** Parses and builds; builder diagnostics are only meaningful when the syntax is clean. */
export function parseText(text: string, options: BuildOptions = {}): ParsedText {
  const result = raspCoreServices().parser.LangiumParser.parse<RaspFile>(text);
  const syntax = syntaxDiagnostics(text, result.lexerErrors, result.parserErrors);
  const build = buildRecovered(result.value, options, syntax.length > 0);
  return { root: result.value, syntax, build };
}

/** Diagnostics to show for a parse: syntax errors, else the builder's. */
export function allDiagnostics(parsed: ParsedText): BuildDiagnostic[] {
  return parsed.syntax.length > 0 ? parsed.syntax : parsed.build.diagnostics;
}
