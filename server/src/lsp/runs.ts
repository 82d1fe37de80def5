// Running programs for the editor: the example input per document (header `example`, or one the client sets),
// cached runs for inlay hints, and the `rasp/run` request.
import type { LangiumDocument } from 'langium';
import { loadProgramFile, loadProgramText } from '../language/load';
import { Execution, type RunResult } from '../interpreter/index';
import { formatPosition } from '../interpreter/summary';
import type { Program } from '../program/types';
import { documentPath } from './analysis';

export interface ExampleRun {
  input: string;
  /** Per statement name: a one-line summary of its values at each position. */
  summaries: Map<string, string>;
}

/** RunResult as JSON plus every variable's values (rows per position). */
export interface RunResultJson {
  tokens: string[];
  prediction: (string | string[])[];
  logits: number[][];
  variables: Record<string, { basis: string; size: number; labels: string[]; values: number[][] }>;
}

const MAX_SHOWN_POSITIONS = 12;

export function runToJson(exec: Execution, result: RunResult, vocabSize: number): RunResultJson {
  const logits: number[][] = [];
  for (let i = 0; i < result.tokens.length; i++) logits.push(Array.from(result.logits.subarray(i * vocabSize, (i + 1) * vocabSize)));
  const variables: RunResultJson['variables'] = {};
  for (const name of exec.variables()) {
    const v = exec.value(name);
    if (!v) continue;
    const rows: number[][] = [];
    for (let i = 0; i < v.n; i++) rows.push(Array.from(v.data.subarray(i * v.basis.size, (i + 1) * v.basis.size)));
    variables[name] = { basis: v.basis.kind, size: v.basis.size, labels: [...v.basis.labels], values: rows };
  }
  return { tokens: result.tokens, prediction: result.prediction, logits, variables };
}

export class ExampleRuns {
  /** Inputs set by the client (`rasp/setExample`), by document URI. */
  private readonly inputs = new Map<string, string>();
  private readonly cache = new Map<string, { version: number; input: string; run: ExampleRun | { error: string } }>();

  setInput(uri: string, input: string | undefined): void {
    if (input === undefined || input.trim() === '') this.inputs.delete(uri);
    else this.inputs.set(uri, input);
    this.cache.delete(uri);
  }

  inputFor(document: LangiumDocument, program?: Program): string | undefined {
    return this.inputs.get(document.uri.toString()) ?? program?.header.example;
  }

  async programOf(document: LangiumDocument): Promise<Program> {
    const path = documentPath(document) ?? document.uri.toString();
    return loadProgramText(document.textDocument.getText(), path);
  }

  /** The run of the document's example input (cached per document version); undefined when there is no input. */
  async exampleRun(document: LangiumDocument): Promise<ExampleRun | { error: string } | undefined> {
    const uri = document.uri.toString();
    let program: Program;
    try {
      program = await this.programOf(document);
    } catch (err) {
      return { error: err instanceof Error ? err.message : String(err) };
    }
    const input = this.inputFor(document, program);
    if (input === undefined) return undefined;
    const cached = this.cache.get(uri);
    if (cached && cached.version === document.textDocument.version && cached.input === input) return cached.run;
    let run: ExampleRun | { error: string };
    try {
      const exec = new Execution(program, input);
      const result = exec.runToEnd();
      const summaries = new Map<string, string>();
      for (const name of exec.variables()) {
        const v = exec.value(name);
        if (!v || name === 'token' || name === 'pos') continue;
        const shown: string[] = [];
        for (let i = 0; i < Math.min(v.n, MAX_SHOWN_POSITIONS); i++) shown.push(formatPosition(v, i, 1));
        summaries.set(name, `[${shown.join(' | ')}${v.n > MAX_SHOWN_POSITIONS ? ' | …' : ''}]`);
      }
      const pred = result.prediction.map((p) => (Array.isArray(p) ? `{${p.join(',')}}` : p));
      summaries.set('prediction', `[${pred.slice(0, MAX_SHOWN_POSITIONS).join(' | ')}${pred.length > MAX_SHOWN_POSITIONS ? ' | …' : ''}]`);
      run = { input, summaries };
    } catch (err) {
      run = { error: err instanceof Error ? err.message : String(err) };
    }
    this.cache.set(uri, { version: document.textDocument.version, input, run });
    return run;
  }
}

/** Runs a program file or open document on an input (default: the header example) for `rasp/run`. */
export async function runForRequest(program: Program | string, input: string | undefined): Promise<RunResultJson> {
  const prog = typeof program === 'string' ? await loadProgramFile(program) : program;
  const text = input ?? prog.header.example;
  if (text === undefined) throw new Error('no input given and the program header has no example');
  const exec = new Execution(prog, text);
  const result = exec.runToEnd();
  return runToJson(exec, result, prog.header.vocab.length);
}
