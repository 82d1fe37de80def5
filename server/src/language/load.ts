// Loading programs: text -> Program (parseProgram) and file + sidecar -> Program (loadProgramFile).
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { UserError } from '../util/errors';
import { readSafetensorsFile } from '../model/safetensors';
import { fromSidecarTensors } from '../program/sidecar';
import type { Program } from '../program/types';
import { allDiagnostics, parseText } from './parse';
import type { BuildDiagnostic, BuildOptions } from './build';

/** A problem with 1-based line and column (end exclusive). */
export interface ProgramDiagnostic {
  severity: 'error' | 'warning' | 'info';
  message: string;
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
}

export function toProgramDiagnostic(d: BuildDiagnostic): ProgramDiagnostic {
  return {
    severity: d.severity,
    message: d.message,
    line: d.range.start.line + 1,
    column: d.range.start.character + 1,
    endLine: d.range.end.line + 1,
    endColumn: d.range.end.character + 1,
  };
}

/**
 * Parses and validates program text. `program` is set when there are no errors; sidecar matrices are declared
 * but not loaded (use loadProgramFile for a runnable program with a sidecar).
 */
export async function parseProgram(text: string, file?: string): Promise<{ program?: Program; diagnostics: ProgramDiagnostic[] }> {
  return parseProgramSync(text, file);
}

export function parseProgramSync(text: string, file?: string, options: BuildOptions = {}): { program?: Program; diagnostics: ProgramDiagnostic[] } {
  const parsed = parseText(text, { ...options, ...(file ? { file } : {}) });
  const diagnostics = allDiagnostics(parsed).map(toProgramDiagnostic);
  const program = parsed.syntax.length === 0 ? parsed.build.program : undefined;
  return { ...(program ? { program } : {}), diagnostics };
}

export function formatDiagnostics(file: string, diagnostics: readonly ProgramDiagnostic[], severity: ProgramDiagnostic['severity'] = 'error'): string {
  return diagnostics
    .filter((d) => d.severity === severity)
    .map((d) => `${file}:${d.line}:${d.column}: ${d.message}`)
    .join('\n');
}

/** Reads a .rasp file and the sidecar its header names; throws UserError listing every error with file:line:col. */
export async function loadProgramFile(path: string): Promise<Program> {
  const abs = resolve(path);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read the program: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, path);
  }
  return loadProgramText(text, abs, path);
}

/** Like loadProgramFile for text already in memory (the language server's open documents). */
export async function loadProgramText(text: string, abs: string, shownPath = abs): Promise<Program> {
  const first = parseText(text, { file: abs });
  let options: BuildOptions = { file: abs };
  const weights = first.build.partial.header.weights;
  if (first.syntax.length === 0 && weights !== undefined) {
    const sidecarPath = resolve(dirname(abs), weights);
    options = { file: abs, sidecar: fromSidecarTensors(await readSafetensorsFile(sidecarPath), sidecarPath) };
  }
  const { program, diagnostics } = parseProgramSync(text, abs, options);
  if (!program) {
    const errors = formatDiagnostics(shownPath, diagnostics);
    throw new UserError(`the program has errors:\n${errors}`);
  }
  return program;
}
