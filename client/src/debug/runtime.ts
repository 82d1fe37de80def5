// The RASP debug runtime: steps the interpreter's Execution over one program and input, keeps breakpoints and
// the paused location, and knows nothing of VS Code or DAP (the session in session.ts translates).
//
// Locations: normally the runtime is paused *before* statement `index` (the highlighted line has not run yet).
// "Row mode" is entered by step-in on a select/aggregate: the statement has run, and the debugger reveals its
// query rows one at a time (the interpreter computes a statement at once; revealing rows is presentation).
import type { Program, Statement } from '../../../server/src/program/types';
import { Execution, RuntimeError } from '../../../server/src/interpreter/index';
import { CancelledError } from '../../../server/src/util/errors';

export type StopReason = 'entry' | 'breakpoint' | 'step' | 'exception' | 'pause';

export type Outcome =
  | { kind: 'stopped'; reason: StopReason; description?: string; text?: string }
  /** The program ran to its end (result available) or cannot go on after a failure. */
  | { kind: 'ended' };

export interface Location {
  /** Index into program.statements of the statement shown. */
  statement: number;
  /** Row mode: the query row revealed last (rows 0..row are visible). */
  row?: number;
  /** Paused after the last statement ran. */
  end?: boolean;
}

export interface BreakpointResult {
  requestedLine: number;
  line: number;
  verified: boolean;
  message?: string;
}

export interface Failure {
  /** Where the runtime shows the failure (the first statement when the input itself is bad). */
  statement: number;
  /** Whether the error came from that statement (false: the input, before any statement ran). */
  atStatement: boolean;
  message: string;
}

/** Statement kinds whose query rows step-in reveals one at a time. */
function hasRows(stmt: Statement): boolean {
  return stmt.kind === 'select' || stmt.kind === 'aggregate';
}

/** Yields to the event loop so pause/terminate requests are handled during a long continue. */
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class RaspRuntime {
  private exec: Execution | undefined;
  private failure: Failure | undefined;
  private row: number | undefined;
  private atEnd = false;
  private pauseRequested = false;
  private disposed = false;
  /** Breakpoint conditions per statement index; `undefined` in the list = an unconditional breakpoint. */
  private breakpointStatements = new Map<number, (string | undefined)[]>();
  /** Evaluates a breakpoint condition in the paused state (set by the session; throws on a bad condition). */
  conditionHolds: ((condition: string) => boolean) | undefined;
  private readonly sourceLines: string[];

  constructor(
    readonly program: Program,
    readonly input: string,
    /** The program's text, to tell blank/comment lines from continuation lines when placing breakpoints. */
    sourceText?: string,
  ) {
    this.sourceLines = sourceText === undefined ? [] : sourceText.split(/\r?\n/);
  }

  get statements(): Statement[] {
    return this.program.statements;
  }

  /** The live execution (undefined when the input could not even be tokenized). */
  get execution(): Execution | undefined {
    return this.exec;
  }

  get failed(): Failure | undefined {
    return this.failure;
  }

  /** Whether every statement has run. */
  get finished(): boolean {
    return this.exec?.done === true;
  }

  get location(): Location {
    if (this.failure) return { statement: this.failure.statement };
    if (this.exec && this.row !== undefined) return { statement: this.exec.index - 1, row: this.row };
    if (this.atEnd || !this.exec) return { statement: Math.max(0, this.statements.length - 1), end: this.atEnd };
    return { statement: this.exec.index };
  }

  /**
   * Statements that have run and whose values may be shown. In row mode the current statement is included
   * (its rows are revealed progressively by the views).
   */
  executedCount(): number {
    if (!this.exec) return 0;
    return this.exec.index;
  }

  /** Places breakpoints (optionally conditional); returns, per requested line, the statement line it landed on. */
  setBreakpoints(lines: number[], conditions: (string | undefined)[] = []): BreakpointResult[] {
    this.breakpointStatements = new Map();
    return lines.map((requestedLine, i) => {
      const index = this.statementForLine(requestedLine);
      if (index === undefined) {
        return { requestedLine, line: requestedLine, verified: false, message: 'no statement at or after this line' };
      }
      const condition = conditions[i]?.trim() || undefined;
      this.breakpointStatements.set(index, [...(this.breakpointStatements.get(index) ?? []), condition]);
      return { requestedLine, line: this.statements[index].line, verified: true };
    });
  }

  /**
   * A statement's first line maps to it; a line inside a multi-line statement maps to that statement;
   * a blank, comment or header line moves to the next statement.
   */
  private statementForLine(line: number): number | undefined {
    const starts = this.statements.map((s, i) => ({ line: s.line, i })).filter((s) => s.line > 0);
    const exact = starts.find((s) => s.line === line);
    if (exact) return exact.i;
    const text = this.sourceLines[line - 1];
    const blank = text === undefined || /^\s*(#.*)?$/.test(text);
    const before = starts.filter((s) => s.line < line);
    if (!blank && before.length > 0) {
      // A continuation line (e.g. `special_op=(...)` or a wrapped prediction) belongs to the statement above,
      // unless a matrix declaration starts in between (its rows belong to no statement).
      const above = before.reduce((a, b) => (b.line > a.line ? b : a));
      const inMatrix = this.sourceLines.slice(above.line, line).some((l) => /^\s*matrix\b/.test(l));
      if (!inMatrix) return above.i;
    }
    const after = starts.filter((s) => s.line > line);
    if (after.length === 0) return undefined;
    return after.reduce((a, b) => (b.line < a.line ? b : a)).i;
  }

  /** Creates the execution; stops on entry, at a breakpoint, at an error, or runs to the end. */
  async start(stopOnEntry: boolean): Promise<Outcome> {
    this.exec = undefined;
    this.failure = undefined;
    this.row = undefined;
    this.atEnd = false;
    this.pauseRequested = false;
    try {
      this.exec = new Execution(this.program, this.input);
    } catch (err) {
      // A bad input (e.g. a token not in the vocabulary) fails before any statement runs.
      return this.fail(err, 0);
    }
    if (this.statements.length === 0) return { kind: 'ended' };
    if (stopOnEntry) return { kind: 'stopped', reason: 'entry' };
    return this.run(true);
  }

  /** Runs until a breakpoint (not the one paused at), an error, a pause request or the end. */
  async continue(): Promise<Outcome> {
    if (this.isOver()) return { kind: 'ended' };
    // From row mode the current statement has already run, so a breakpoint on the next one must count.
    const fromRow = this.row !== undefined;
    this.row = undefined;
    return this.run(fromRow);
  }

  requestPause(): void {
    this.pauseRequested = true;
  }

  /** Stops a run in progress for good (restart/terminate): the loop ends at the next statement boundary. */
  dispose(): void {
    this.disposed = true;
  }

  /** Step over: runs the current statement (or reveals the next row in row mode). */
  next(): Outcome {
    if (this.isOver()) return { kind: 'ended' };
    if (this.row !== undefined) return this.nextRow();
    return this.stepStatement();
  }

  /** Step in: into the rows of a select/aggregate; otherwise like step over. */
  stepIn(): Outcome {
    if (this.isOver()) return { kind: 'ended' };
    if (this.row !== undefined) return this.nextRow();
    const exec = this.exec!;
    const stmt = this.statements[exec.index];
    if (!hasRows(stmt) || exec.n === 0) return this.stepStatement();
    const error = this.runOne();
    if (error) return error;
    this.row = 0;
    return { kind: 'stopped', reason: 'step', description: `${stmt.name}: query row 0` };
  }

  /** Step out: finishes the statement whose rows are being revealed; at the top level, like step over. */
  stepOut(): Outcome {
    if (this.isOver()) return { kind: 'ended' };
    if (this.row !== undefined) {
      this.row = undefined;
      return this.afterStatement();
    }
    return this.stepStatement();
  }

  private isOver(): boolean {
    return !this.exec || this.failure !== undefined || this.atEnd;
  }

  private nextRow(): Outcome {
    const exec = this.exec!;
    if (this.row! + 1 < exec.n) {
      this.row = this.row! + 1;
      return { kind: 'stopped', reason: 'step', description: `${this.statements[exec.index - 1].name}: query row ${this.row}` };
    }
    this.row = undefined;
    return this.afterStatement();
  }

  private stepStatement(): Outcome {
    const error = this.runOne();
    if (error) return error;
    return this.afterStatement();
  }

  private afterStatement(): Outcome {
    if (this.exec!.done) {
      // Pause once more after the last statement so the prediction can be inspected.
      this.atEnd = true;
      return { kind: 'stopped', reason: 'step', description: 'end of program' };
    }
    return { kind: 'stopped', reason: 'step' };
  }

  private async run(checkFirst: boolean): Promise<Outcome> {
    const exec = this.exec!;
    let first = true;
    this.pauseRequested = false;
    while (!exec.done) {
      if (checkFirst || !first) {
        const stop = this.breakpointStop(exec.index);
        if (stop) return stop;
      }
      first = false;
      const error = this.runOne();
      if (error) return error;
      await tick();
      if (this.disposed) return { kind: 'ended' };
      if (this.pauseRequested) {
        this.pauseRequested = false;
        if (!exec.done) return { kind: 'stopped', reason: 'pause' };
      }
    }
    return { kind: 'ended' };
  }

  /** The stop for a breakpoint on statement `index`, when one applies (no condition, or one that holds). */
  private breakpointStop(index: number): Outcome | undefined {
    const conditions = this.breakpointStatements.get(index);
    if (!conditions) return undefined;
    for (const condition of conditions) {
      if (condition === undefined || !this.conditionHolds) return { kind: 'stopped', reason: 'breakpoint' };
      try {
        if (this.conditionHolds(condition)) return { kind: 'stopped', reason: 'breakpoint', description: `condition ${condition}` };
      } catch (err) {
        // A condition that cannot be evaluated stops, so the user sees why instead of silently running past.
        const message = err instanceof Error ? err.message : String(err);
        return { kind: 'stopped', reason: 'breakpoint', description: `breakpoint condition error: ${message}`, text: message };
      }
    }
    return undefined;
  }

  /** Runs the next statement; returns the exception stop if it failed. */
  private runOne(): Outcome | undefined {
    const exec = this.exec!;
    const index = exec.index;
    try {
      exec.step();
      return undefined;
    } catch (err) {
      return this.fail(err, index);
    }
  }

  private fail(err: unknown, index: number): Outcome {
    if (err instanceof CancelledError) throw err;
    let statement = index;
    let atStatement = this.exec !== undefined;
    if (err instanceof RuntimeError) {
      const at = err.statement ? this.statements.indexOf(err.statement) : -1;
      if (at >= 0) {
        statement = at;
        atStatement = true;
      }
    }
    // RuntimeError.detail is the message without the file/line prefix, which the session adds itself.
    const message = err instanceof RuntimeError ? err.detail : `internal error: ${err instanceof Error ? err.message : String(err)}`;
    this.failure = { statement, atStatement, message };
    return { kind: 'stopped', reason: 'exception', description: 'runtime error', text: this.failure.message };
  }
}
