// The DAP side of the RASP debugger: translates Debug Adapter Protocol requests into RaspRuntime actions and
// the paused state (views.ts) into threads, frames, scopes and variables. Runs inline in the extension host
// (register.ts) or as its own process (standalone.ts). No vscode imports.
import { readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import {
  Breakpoint,
  BreakpointEvent,
  DebugSession,
  Handles,
  InitializedEvent,
  OutputEvent,
  Scope,
  Source,
  StackFrame,
  StoppedEvent,
  TerminatedEvent,
  Thread,
} from '@vscode/debugadapter';
import type { DebugProtocol } from '@vscode/debugprotocol';
import type { Program, Statement } from '../../../server/src/program/types';
import type { LoadedModel } from '../../../server/src/model/types';
import { loadProgramFile } from '../../../server/src/language/load';
import { loadModel } from '../../../server/src/model/load';
import { EXPRESSION_FUNCTIONS, ExpressionError, evaluateExpression, tableRow, type DebugValue, type LabelledVector, type Table } from './expression';
import { traceModel, type ModelActivations } from './model';
import { RaspRuntime, type Outcome } from './runtime';
import { DIFF_TOLERANCE, StateView, decisionText, fmt, maxCausalDiff, quoteLabel, topEntries, type HeadComparison } from './views';

export const DEBUG_TYPE = 'rasp';
const THREAD_ID = 1;
const STATEMENT_FRAME = 1;
const ROW_FRAME = 2;
const NOT_EQUAL = '≠';

/** launch.json attributes of a `rasp` debug configuration. */
export interface RaspLaunchArguments extends DebugProtocol.LaunchRequestArguments {
  /** The .rasp program (absolute, or relative to cwd). */
  program: string;
  /** Input in the CLI's --input format (space-separated tokens); default: the program header's example. */
  input?: string;
  stopOnEntry?: boolean;
  /** A model folder (config.json + model.safetensors) whose activations are shown next to the program's. */
  model?: string;
  cwd?: string;
}

type Children = () => DebugProtocol.Variable[];

export class RaspDebugSession extends DebugSession {
  private runtime: RaspRuntime | undefined;
  private launchArgs: RaspLaunchArguments | undefined;
  private model: LoadedModel | undefined;
  private activations: ModelActivations | undefined;
  private refs = new Handles<Children>();
  /** Requested breakpoint lines by absolute source path (kept across restarts). */
  private requestedBreakpoints = new Map<string, DebugProtocol.SourceBreakpoint[]>();
  private breakpointIds = new Map<string, number[]>();
  private nextBreakpointId = 1;
  private configurationDone: Promise<void>;
  private markConfigurationDone!: () => void;
  private predictionReported = false;

  constructor() {
    super();
    this.setDebuggerLinesStartAt1(true);
    this.setDebuggerColumnsStartAt1(true);
    this.configurationDone = new Promise((resolve) => (this.markConfigurationDone = resolve));
  }

  protected override initializeRequest(response: DebugProtocol.InitializeResponse): void {
    response.body = {
      ...response.body,
      supportsConfigurationDoneRequest: true,
      supportsEvaluateForHovers: true,
      supportsRestartRequest: true,
      supportsTerminateRequest: true,
      supportsExceptionInfoRequest: true,
      supportsSteppingGranularity: false,
      supportsCompletionsRequest: true,
      supportsConditionalBreakpoints: true,
    };
    this.sendResponse(response);
  }

  protected override configurationDoneRequest(response: DebugProtocol.ConfigurationDoneResponse): void {
    this.sendResponse(response);
    this.markConfigurationDone();
  }

  protected override async launchRequest(response: DebugProtocol.LaunchResponse, args: RaspLaunchArguments): Promise<void> {
    try {
      this.launchArgs = args;
      await this.load(args);
    } catch (err) {
      this.reportError(err);
      this.sendErrorResponse(response, { id: 1001, format: messageOf(err), showUser: true });
      return;
    }
    // Breakpoints are placed against the loaded program, so configuration starts only now.
    this.sendEvent(new InitializedEvent());
    await Promise.race([this.configurationDone, new Promise((r) => setTimeout(r, 5000))]);
    this.sendResponse(response);
    await this.guard(this.begin(args.stopOnEntry === true));
  }

  /** Loads program, input and model, and builds a fresh runtime with the requested breakpoints. */
  private async load(args: RaspLaunchArguments): Promise<void> {
    if (typeof args.program !== 'string' || args.program === '') {
      throw new Error("launch.json: 'program' must name a .rasp file");
    }
    const file = resolve(args.cwd ?? process.cwd(), args.program);
    const program: Program = await loadProgramFile(file);
    const text = await readFile(file, 'utf8');
    const input = args.input ?? program.header.example;
    if (input === undefined) {
      throw new Error(`${file}: no input: set 'input' in launch.json or add 'example "..."' to the program header`);
    }
    if (args.model !== undefined) {
      this.model = await loadModel(resolve(args.cwd ?? process.cwd(), args.model));
      for (const warning of this.model.warnings ?? []) this.sendEvent(new OutputEvent(`${warning}\n`, 'console'));
    } else {
      this.model = undefined;
    }
    const runtime = new RaspRuntime(program, input, text);
    this.runtime?.dispose();
    runtime.conditionHolds = (condition) => {
      const value = evaluateExpression(condition, new StateView(runtime, this.activations));
      if (value.kind !== 'number') throw new ExpressionError(`the condition gives a ${value.kind}, not a number (${condition})`);
      return value.value !== 0;
    };
    this.runtime = runtime;
    this.activations = undefined;
    this.predictionReported = false;
    this.applyBreakpoints();
  }

  private async begin(stopOnEntry: boolean): Promise<void> {
    const runtime = this.runtime!;
    const outcome = await runtime.start(stopOnEntry);
    if (runtime !== this.runtime) return;
    const exec = runtime.execution;
    if (this.model && exec) {
      try {
        this.activations = await traceModel(runtime.program, this.model, exec.tokens);
      } catch (err) {
        this.reportError(err);
      }
    }
    if (runtime === this.runtime) this.report(outcome);
  }

  private programFile(): string | undefined {
    return this.runtime?.program.file;
  }

  // ---- breakpoints ----

  protected override setBreakPointsRequest(response: DebugProtocol.SetBreakpointsResponse, args: DebugProtocol.SetBreakpointsArguments): void {
    const path = args.source.path ? resolve(args.source.path) : '';
    const requested = args.breakpoints ?? (args.lines ?? []).map((line) => ({ line }));
    this.requestedBreakpoints.set(path, requested);
    const ids = requested.map(() => this.nextBreakpointId++);
    this.breakpointIds.set(path, ids);
    response.body = { breakpoints: this.placeBreakpoints(path) };
    this.sendResponse(response);
  }

  /** Verifies the requested breakpoints of `path` against the loaded program. */
  private placeBreakpoints(path: string): DebugProtocol.Breakpoint[] {
    const requested = this.requestedBreakpoints.get(path) ?? [];
    const ids = this.breakpointIds.get(path) ?? [];
    const runtime = this.runtime;
    if (!runtime || runtime.program.file === undefined || resolve(runtime.program.file) !== path) {
      return requested.map((b, i) => {
        const bp: DebugProtocol.Breakpoint = new Breakpoint(false, b.line);
        bp.id = ids[i];
        bp.message = runtime ? 'not the program being debugged' : 'the program is not loaded yet';
        return bp;
      });
    }
    const results = runtime.setBreakpoints(
      requested.map((b) => b.line),
      requested.map((b) => b.condition),
    );
    return results.map((r, i) => {
      const bp: DebugProtocol.Breakpoint = new Breakpoint(r.verified, r.line);
      bp.id = ids[i];
      if (r.message) bp.message = r.message;
      return bp;
    });
  }

  /** After (re)loading a program: place its breakpoints and tell the client where they landed. */
  private applyBreakpoints(): void {
    const file = this.programFile();
    if (!file) return;
    const path = resolve(file);
    if (!this.requestedBreakpoints.has(path)) {
      this.runtime!.setBreakpoints([]);
      return;
    }
    for (const bp of this.placeBreakpoints(path)) this.sendEvent(new BreakpointEvent('changed', bp));
  }

  protected override setExceptionBreakPointsRequest(response: DebugProtocol.SetExceptionBreakpointsResponse): void {
    this.sendResponse(response);
  }

  // ---- execution control ----

  protected override threadsRequest(response: DebugProtocol.ThreadsResponse): void {
    const name = this.runtime?.program.header.name ?? (this.programFile() ? basename(this.programFile()!) : 'RASP');
    response.body = { threads: [new Thread(THREAD_ID, name)] };
    this.sendResponse(response);
  }

  protected override async continueRequest(response: DebugProtocol.ContinueResponse): Promise<void> {
    response.body = { allThreadsContinued: true };
    this.sendResponse(response);
    const runtime = this.runtime;
    if (!runtime) return;
    await this.guard(
      runtime.continue().then((outcome) => {
        // A restart or terminate during the run replaced or ended this runtime: its outcome no longer matters.
        if (runtime === this.runtime) this.report(outcome);
      }),
    );
  }

  protected override nextRequest(response: DebugProtocol.NextResponse): void {
    this.sendResponse(response);
    if (this.runtime) this.report(this.runtime.next());
  }

  protected override stepInRequest(response: DebugProtocol.StepInResponse): void {
    this.sendResponse(response);
    if (this.runtime) this.report(this.runtime.stepIn());
  }

  protected override stepOutRequest(response: DebugProtocol.StepOutResponse): void {
    this.sendResponse(response);
    if (this.runtime) this.report(this.runtime.stepOut());
  }

  protected override pauseRequest(response: DebugProtocol.PauseResponse): void {
    this.runtime?.requestPause();
    this.sendResponse(response);
  }

  protected override async restartRequest(response: DebugProtocol.RestartResponse, args: DebugProtocol.RestartArguments | undefined): Promise<void> {
    // The client may send an edited launch configuration; the program is re-read so edits take effect.
    const launch = (args?.arguments as RaspLaunchArguments | undefined) ?? this.launchArgs;
    if (!launch) {
      this.sendErrorResponse(response, { id: 1002, format: 'nothing to restart: no program was launched', showUser: true });
      return;
    }
    try {
      this.launchArgs = launch;
      await this.load(launch);
    } catch (err) {
      this.reportError(err);
      this.sendErrorResponse(response, { id: 1001, format: messageOf(err), showUser: true });
      return;
    }
    this.sendResponse(response);
    await this.guard(this.begin(launch.stopOnEntry === true));
  }

  protected override terminateRequest(response: DebugProtocol.TerminateResponse): void {
    this.runtime?.dispose();
    this.runtime = undefined;
    this.sendResponse(response);
    this.sendEvent(new TerminatedEvent());
  }

  /** Work after a response was sent has no response to fail: an internal error is shown and ends the session. */
  private async guard(work: Promise<void>): Promise<void> {
    try {
      await work;
    } catch (err) {
      this.reportError(new Error(`internal error: ${messageOf(err)}`));
      this.sendEvent(new TerminatedEvent());
    }
  }

  /** Turns a runtime outcome into a stopped event, or reports the prediction and ends the session. */
  private report(outcome: Outcome): void {
    this.refs.reset();
    const runtime = this.runtime!;
    if (runtime.finished) this.reportPrediction();
    if (outcome.kind === 'ended') {
      this.sendEvent(new TerminatedEvent());
      return;
    }
    if (outcome.reason === 'exception') this.reportError(new Error(this.failureText()));
    if (outcome.reason === 'breakpoint' && outcome.text) this.reportError(new Error(`breakpoint condition: ${outcome.text}`));
    const event = new StoppedEvent(outcome.reason, THREAD_ID, outcome.text) as DebugProtocol.StoppedEvent;
    if (outcome.description) event.body.description = outcome.description;
    event.body.allThreadsStopped = true;
    this.sendEvent(event);
  }

  private failureText(): string {
    const runtime = this.runtime!;
    const failure = runtime.failed!;
    const file = runtime.program.file ?? 'program';
    const stmt = failure.atStatement ? runtime.statements[failure.statement] : undefined;
    if (!stmt) return `${file}: input ${JSON.stringify(runtime.input)}: ${failure.message}`;
    return `${file}:${stmt.line} (${stmt.name}): ${failure.message}`;
  }

  private reportPrediction(): void {
    if (this.predictionReported) return;
    this.predictionReported = true;
    const result = this.view().result();
    if (!result) return;
    this.sendEvent(new OutputEvent(`prediction: ${result.prediction.map(decisionText).join(' ')}\n`, 'stdout'));
    if (this.activations) {
      const view = this.view();
      const modelDecisions = view.modelPredictionTable()!.rowSummaries!;
      const differ = modelDecisions.map((d, i) => (d !== decisionText(result.prediction[i]) ? i : -1)).filter((i) => i >= 0);
      this.sendEvent(
        new OutputEvent(
          `model prediction: ${modelDecisions.join(' ')}${differ.length ? `  ${NOT_EQUAL} at positions ${differ.join(', ')}` : '  (agrees)'}\n`,
          'stdout',
        ),
      );
    }
  }

  private reportError(err: unknown): void {
    this.sendEvent(new OutputEvent(`${messageOf(err)}\n`, 'stderr'));
  }

  protected override exceptionInfoRequest(response: DebugProtocol.ExceptionInfoResponse): void {
    const failure = this.runtime?.failed;
    if (!failure) {
      this.sendErrorResponse(response, { id: 1003, format: 'not stopped on an error', showUser: false });
      return;
    }
    response.body = { exceptionId: 'RuntimeError', description: this.failureText(), breakMode: 'always' };
    this.sendResponse(response);
  }

  // ---- stack, scopes, variables ----

  private view(): StateView {
    return new StateView(this.runtime!, this.activations);
  }

  private source(): Source | undefined {
    const file = this.programFile();
    return file ? new Source(basename(file), this.convertDebuggerPathToClient(file)) : undefined;
  }

  protected override stackTraceRequest(response: DebugProtocol.StackTraceResponse): void {
    const runtime = this.runtime;
    if (!runtime || runtime.statements.length === 0) {
      response.body = { stackFrames: [], totalFrames: 0 };
      this.sendResponse(response);
      return;
    }
    const loc = runtime.location;
    const stmt = runtime.statements[loc.statement];
    const line = this.convertDebuggerLineToClient(Math.max(1, stmt.line));
    const frames: StackFrame[] = [];
    if (loc.row !== undefined) {
      const label = this.view().positionLabels()[loc.row];
      frames.push(new StackFrame(ROW_FRAME, `${stmt.name} row ${label}`, this.source(), line, 1));
    }
    const name = loc.end ? 'end of program' : describeStatement(stmt);
    frames.push(new StackFrame(STATEMENT_FRAME, name, this.source(), line, 1));
    response.body = { stackFrames: frames, totalFrames: frames.length };
    this.sendResponse(response);
  }

  protected override scopesRequest(response: DebugProtocol.ScopesResponse, args: DebugProtocol.ScopesArguments): void {
    const scopes: DebugProtocol.Scope[] = [];
    const runtime = this.runtime;
    if (runtime) {
      const view = this.view();
      const loc = runtime.location;
      if (args.frameId === ROW_FRAME && loc.row !== undefined) {
        scopes.push(new Scope(`Row ${view.positionLabels()[loc.row]}`, this.refs.create(() => this.rowVariables(view)), false));
      }
      scopes.push(new Scope('Values', this.refs.create(() => this.valueVariables(view)), false));
      scopes.push(new Scope('Selectors', this.refs.create(() => this.selectorVariables(view)), false));
      if (this.activations) scopes.push(new Scope('Model', this.refs.create(() => this.modelVariables(view)), false));
    }
    response.body = { scopes };
    this.sendResponse(response);
  }

  protected override variablesRequest(response: DebugProtocol.VariablesResponse, args: DebugProtocol.VariablesArguments): void {
    const children = this.refs.get(args.variablesReference);
    let variables = children ? children() : [];
    if (args.start !== undefined || args.count !== undefined) {
      const start = args.start ?? 0;
      variables = variables.slice(start, args.count ? start + args.count : undefined);
    }
    response.body = { variables };
    this.sendResponse(response);
  }

  private valueVariables(view: StateView): DebugProtocol.Variable[] {
    const out: DebugProtocol.Variable[] = [];
    for (const name of view.valueNames()) {
      const table = view.variableTable(name);
      if (table) out.push(this.tableVariable(name, table, name));
    }
    const prediction = view.predictionTable();
    if (prediction) out.push(this.tableVariable('prediction', prediction, 'prediction'));
    return out;
  }

  private selectorVariables(view: StateView): DebugProtocol.Variable[] {
    const out: DebugProtocol.Variable[] = [];
    for (const stmt of view.executed()) {
      if (stmt.kind === 'select') {
        const table = view.selectorTable(stmt.name);
        if (table) out.push(this.tableVariable(stmt.name, table, stmt.name, 'scores'));
      } else if (stmt.kind === 'aggregate') {
        const table = view.attentionTable(stmt.name);
        const name = `attention(${stmt.name})`;
        if (table) out.push(this.tableVariable(name, table, name, 'weights'));
      }
    }
    return out;
  }

  /** The row being revealed: the query, its selector scores/attention weights, and its output value. */
  private rowVariables(view: StateView): DebugProtocol.Variable[] {
    const runtime = this.runtime!;
    const loc = runtime.location;
    const row = loc.row!;
    const stmt = runtime.statements[loc.statement];
    const out: DebugProtocol.Variable[] = [{ name: 'query', value: view.positionLabels()[row], variablesReference: 0 }];
    if (stmt.kind === 'select') {
      const table = view.selectorTable(stmt.name);
      if (table) out.push(this.vectorVariable('scores', tableRow(table, row), `${stmt.name}[${row}]`));
    } else if (stmt.kind === 'aggregate') {
      for (const s of stmt.selectors) {
        const table = view.selectorTable(s);
        if (table) out.push(this.vectorVariable(`scores ${s}`, tableRow(table, row), `${s}[${row}]`));
      }
      const weights = view.attentionTable(stmt.name);
      if (weights) out.push(this.vectorVariable('weights', tableRow(weights, row), `attention(${stmt.name})[${row}]`));
      const value = view.variableTable(stmt.name);
      if (value) out.push(this.vectorVariable(stmt.name, tableRow(value, row), `${stmt.name}[${row}]`));
    }
    return out;
  }

  private modelVariables(view: StateView): DebugProtocol.Variable[] {
    const out: DebugProtocol.Variable[] = [];
    for (const cmp of view.headComparisons()) out.push(this.headVariable(view, cmp));
    const modelPrediction = view.modelPredictionTable();
    if (modelPrediction) {
      const program = view.predictionTable();
      const programDecisions = program?.rowSummaries;
      const summaries = modelPrediction.rowSummaries!.map((d, i) =>
        programDecisions && programDecisions[i] !== d ? `${d} ${NOT_EQUAL} program ${programDecisions[i]}` : d,
      );
      const table: Table = { ...modelPrediction, rowSummaries: summaries };
      const differ = summaries.filter((s) => s.includes(NOT_EQUAL)).length;
      const status = programDecisions
        ? differ > 0
          ? `${NOT_EQUAL} differs from the program at ${differ} of ${summaries.length} positions`
          : 'agrees with the program at every position'
        : 'the program has not predicted yet';
      out.push({
        name: 'prediction (model)',
        value: `[${modelPrediction.rowSummaries!.join(', ')}] ${status}`,
        variablesReference: this.refs.create(() => this.tableRows(table, undefined)),
      });
    }
    return out;
  }

  /** A head's real attention next to the program's line, rows marked where they differ. */
  private headVariable(view: StateView, cmp: HeadComparison): DebugProtocol.Variable {
    const n = view.n;
    const labels = view.positionLabels();
    // float32 model patterns vs float64 program weights: differences below 1e-4 are rounding, shown as 0.
    const diff = Number(maxCausalDiff(cmp.model, cmp.program, n).toFixed(4));
    const mark = diff > DIFF_TOLERANCE ? ` ${NOT_EQUAL}` : '';
    const rows = (): DebugProtocol.Variable[] =>
      labels.map((label, i) => {
        const rowDiff = Number(maxCausalDiff(cmp.model, cmp.program, n, i).toFixed(4));
        const modelRow = Array.from({ length: i + 1 }, (_, j) => cmp.model[i * n + j]);
        const programRow = Array.from({ length: i + 1 }, (_, j) => cmp.program[i * n + j]);
        const keys = labels.slice(0, i + 1);
        const differs = rowDiff > DIFF_TOLERANCE;
        return {
          name: differs ? `${label} ${NOT_EQUAL}` : label,
          value: differs
            ? `model ${topEntries(keys, modelRow, false)} ${NOT_EQUAL} program ${topEntries(keys, programRow, false)} (max |diff| ${fmt(rowDiff)})`
            : `model ${topEntries(keys, modelRow, false)}`,
          variablesReference: this.refs.create(() =>
            keys.map((key, j) => {
              const d = Math.abs(modelRow[j] - programRow[j]);
              return {
                name: key,
                value: `model ${fmt(modelRow[j])}, program ${fmt(programRow[j])}${d > DIFF_TOLERANCE ? ` ${NOT_EQUAL}` : ''}`,
                variablesReference: 0,
              };
            }),
          ),
        };
      });
    return {
      name: `layer ${cmp.layer} head ${cmp.head} (${cmp.statement.name})${mark}`,
      value: `attention ${n}×${n}, max |diff| vs ${cmp.statement.name} ${fmt(diff)}${mark}`,
      variablesReference: this.refs.create(rows),
    };
  }

  private tableVariable(name: string, table: Table, evaluateName: string, what?: string): DebugProtocol.Variable {
    const n = table.rowLabels.length;
    const visible = Math.min(table.visibleRows ?? n, n);
    return {
      name,
      value: summarizeTable(table, visible, what),
      // Shown in hovers: what the columns mean.
      type: table.basisKind ? `${table.basisKind} basis (${table.colLabels.length}) × ${n} positions` : `${n}×${table.colLabels.length}`,
      evaluateName,
      variablesReference: this.refs.create(() => this.tableRows(table, evaluateName)),
      indexedVariables: visible,
    };
  }

  private tableRows(table: Table, evaluateName: string | undefined): DebugProtocol.Variable[] {
    const n = table.rowLabels.length;
    const visible = Math.min(table.visibleRows ?? n, n);
    return Array.from({ length: visible }, (_, i) => {
      const vec = tableRow(table, i);
      const v = this.vectorVariable(table.rowLabels[i], vec, evaluateName ? `${evaluateName}[${i}]` : undefined);
      if (table.rowSummaries) v.value = table.rowSummaries[i];
      return v;
    });
  }

  private vectorVariable(name: string, vec: LabelledVector, evaluateName?: string): DebugProtocol.Variable {
    return {
      name,
      value: topEntries(vec.labels, vec.data, vec.quoted === true),
      evaluateName,
      variablesReference:
        vec.data.length > 1
          ? this.refs.create(() =>
              vec.data.map((x, c) => ({
                name: quoteLabel(vec.labels[c], vec.quoted === true),
                value: fmt(x),
                evaluateName: evaluateName ? `${evaluateName}[${vec.quoted ? JSON.stringify(vec.labels[c]) : c}]` : undefined,
                variablesReference: 0,
              })),
            )
          : 0,
    };
  }

  // ---- evaluate ----

  protected override evaluateRequest(response: DebugProtocol.EvaluateResponse, args: DebugProtocol.EvaluateArguments): void {
    if (!this.runtime?.execution) {
      this.sendErrorResponse(response, { id: 1004, format: 'nothing to evaluate: the program is not running', showUser: false });
      return;
    }
    let value: DebugValue;
    try {
      value = evaluateExpression(args.expression, this.view());
    } catch (err) {
      // Hovers over words that are not variables should stay silent; watches and the REPL show why.
      const message = err instanceof ExpressionError ? err.message : `internal error: ${messageOf(err)}`;
      this.sendErrorResponse(response, { id: 1005, format: message, showUser: false });
      return;
    }
    response.body = this.evaluated(value, args.expression);
    this.sendResponse(response);
  }

  /** Debug console completion: names defined at this point and the expression functions. */
  protected override completionsRequest(response: DebugProtocol.CompletionsResponse, args: DebugProtocol.CompletionsArguments): void {
    const before = args.text.slice(0, Math.max(0, this.convertClientColumnToDebugger(args.column) - 1));
    const prefix = /[A-Za-z_][A-Za-z0-9_]*$/.exec(before)?.[0] ?? '';
    const names = this.runtime?.execution ? this.view().names() : [];
    const targets: DebugProtocol.CompletionItem[] = [
      ...names.map((label) => ({ label, type: 'variable' as const })),
      ...EXPRESSION_FUNCTIONS.map((label) => ({ label, type: 'function' as const })),
    ].filter((t) => t.label.startsWith(prefix));
    // `start` is a column in the client's base; the word being completed is replaced.
    const start = this.convertDebuggerColumnToClient(before.length - prefix.length + 1);
    response.body = { targets: targets.map((t) => ({ ...t, start, length: prefix.length })) };
    this.sendResponse(response);
  }

  private evaluated(value: DebugValue, expression: string): DebugProtocol.EvaluateResponse['body'] {
    switch (value.kind) {
      case 'number':
        return { result: fmt(value.value), type: 'number', variablesReference: 0 };
      case 'string':
        return { result: JSON.stringify(value.value), type: 'string', variablesReference: 0 };
      case 'vector': {
        const v = this.vectorVariable(expression, value, expression);
        return { result: v.value, type: 'vector', variablesReference: v.variablesReference };
      }
      case 'table': {
        const v = this.tableVariable(expression, { ...value, visibleRows: undefined }, expression);
        return { result: v.value, type: 'table', variablesReference: v.variablesReference, indexedVariables: v.indexedVariables };
      }
    }
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A frame's name: the statement's kind and name, plus where in the model it came from. */
function describeStatement(stmt: Statement): string {
  const prov = stmt.provenance;
  const where = prov ? (prov.mlp ? ` (layer ${prov.layer} mlp)` : prov.head !== null ? ` (layer ${prov.layer} head ${prov.head})` : ` (layer ${prov.layer})`) : '';
  return `${stmt.name} = ${stmt.kind}${where}`;
}

/** One line for a whole variable or matrix: its shape and each position's top entry. */
function summarizeTable(table: Table, visible: number, what?: string): string {
  const n = table.rowLabels.length;
  const shape = `${what ?? table.basisKind ?? ''}${what || table.basisKind ? ' ' : ''}${n}×${table.colLabels.length}`;
  const partial = visible < n ? ` (rows 0..${visible - 1} of ${n})` : '';
  const shown = Math.min(visible, 8);
  const tops = Array.from({ length: shown }, (_, i) => {
    if (table.rowSummaries) return table.rowSummaries[i];
    const row = tableRow(table, i);
    if (row.data.length === 1) return fmt(row.data[0]);
    const k = row.data.reduce((best, x, c) => (x > row.data[best] ? c : best), 0);
    const label = quoteLabel(row.labels[k], row.quoted === true);
    return row.data[k] >= 0.999 ? label : `${label} ${fmt(row.data[k])}`;
  });
  const more = visible > shown ? ', …' : '';
  return `${shape}${partial} [${tops.join(', ')}${more}]`;
}
