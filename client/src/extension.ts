// The VS Code extension: starts the RASP language server (out/server.cjs over IPC), adds the model-facing hover
// extras through client middleware, registers the commands, the model viewer and the debugger. Heavy model work
// runs in worker threads (jobs.ts) so the extension host keeps answering.
import * as vscode from 'vscode';
import { LanguageClient, TransportKind, type LanguageClientOptions, type ServerOptions } from 'vscode-languageclient/node';
import { registerDebugger } from './debug/register';
import { checkCommand, checkDiagnostics } from './commands/check';
import { decompileCommand } from './commands/decompile';
import { runCommand } from './commands/run';
import { trainCommand } from './commands/train';
import { showAttentionCommand, showHeatmapCommand, type LineTarget } from './commands/views';
import { mergeHover } from './hover';
import { JobRunner } from './jobs';
import { activeRaspDocument, forgetProgram, programFor } from './programs';
import { showDataflow } from './views/dataflow';
import { ModelEditorProvider } from './views/modelEditor';
import { lastExtractReport, showExtractReport } from './views/report';

let client: LanguageClient | undefined;

function startLanguageClient(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): LanguageClient {
  const module = context.asAbsolutePath('out/server.cjs');
  const serverOptions: ServerOptions = {
    run: { module, transport: TransportKind.ipc },
    debug: { module, transport: TransportKind.ipc, options: { execArgv: ['--nolazy', '--inspect=6009'] } },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'rasp' },
      { scheme: 'untitled', language: 'rasp' },
    ],
    outputChannel: log,
    middleware: {
      provideHover: async (document, position, token, next) => mergeHover(document, position, await next(document, position, token)),
    },
  };
  const c = new LanguageClient('rasp', 'RASP Language Server', serverOptions, clientOptions);
  // The middleware only runs when the server offers hovers; otherwise the extras get a provider of their own.
  const ownHover = () =>
    context.subscriptions.push(vscode.languages.registerHoverProvider({ language: 'rasp' }, { provideHover: (doc, pos) => mergeHover(doc, pos, undefined) }));
  c.start().then(
    () => {
      if (!c.initializeResult?.capabilities.hoverProvider) ownHover();
    },
    (err: unknown) => {
      log.appendLine(`language server failed to start: ${String(err)}`);
      ownHover();
    },
  );
  return c;
}

export function activate(context: vscode.ExtensionContext): { jobs: JobRunner } {
  const log = vscode.window.createOutputChannel('RASP', { log: true });
  const jobs = new JobRunner(context.extensionPath, log);
  context.subscriptions.push(log, jobs, checkDiagnostics);

  client = startLanguageClient(context, log);

  const modelEditor = new ModelEditorProvider(jobs);
  const editorOptions = { webviewOptions: { retainContextWhenHidden: true }, supportsMultipleEditorsPerDocument: true };
  context.subscriptions.push(
    vscode.window.registerCustomEditorProvider('rasp.modelEditor', modelEditor, editorOptions),
    vscode.window.registerCustomEditorProvider('rasp.modelEditor.config', modelEditor, editorOptions),
  );

  const register = (id: string, fn: (...args: never[]) => unknown) => context.subscriptions.push(vscode.commands.registerCommand(id, fn));
  register('rasp.decompileModel', (uri?: vscode.Uri) => decompileCommand(jobs, log, uri));
  register('rasp.checkProgram', (uri?: vscode.Uri) => checkCommand(jobs, log, uri));
  register('rasp.trainModel', () => trainCommand(jobs, log));
  register('rasp.runProgram', (arg?: unknown, input?: unknown) => runCommand(arg, input));
  register('rasp.showHeatmap', (target?: LineTarget) => showHeatmapCommand(target));
  register('rasp.showAttention', (target?: LineTarget) => showAttentionCommand(target));
  register('rasp.openModel', async (uri?: vscode.Uri) => {
    if (!uri) return;
    const file = uri.fsPath.endsWith('config.json') ? vscode.Uri.joinPath(uri, '..', 'model.safetensors') : uri;
    await vscode.commands.executeCommand('vscode.openWith', file, 'rasp.modelEditor');
  });
  register('rasp.showDataflow', async (uri?: vscode.Uri) => {
    const doc = await activeRaspDocument(uri instanceof vscode.Uri ? uri : undefined);
    if (!doc) return;
    const program = await programFor(doc);
    if (!program) {
      void vscode.window.showErrorMessage(`${vscode.workspace.asRelativePath(doc.uri)} has errors; fix them first (see Problems).`);
      return;
    }
    showDataflow(doc, program);
  });
  register('rasp.showReport', async () => {
    const report = lastExtractReport();
    if (report) await showExtractReport(report);
    else void vscode.window.showInformationMessage('No extraction has run in this window yet: use "RASP: Decompile Model...".');
  });
  // Answers at once even while a job runs: the long work lives in worker threads.
  register('rasp.showStatus', () => {
    const running = jobs.list();
    const text = running.length
      ? running
          .map((j) => `${j.title}: ${j.progress ? `${j.progress.stage} ${Math.round(j.progress.fraction * 100)}%` : 'starting'} (${((Date.now() - j.started) / 1000).toFixed(0)} s)`)
          .join('; ')
      : 'no jobs running';
    void vscode.window.showInformationMessage(`RASP: ${text}`);
    return running;
  });

  context.subscriptions.push(
    vscode.workspace.onDidCloseTextDocument(forgetProgram),
    // Check results describe the text they ran on; an edit makes them stale.
    vscode.workspace.onDidChangeTextDocument((e) => {
      if (e.contentChanges.length && checkDiagnostics.has(e.document.uri)) checkDiagnostics.delete(e.document.uri);
    }),
  );

  registerDebugger(context);
  return { jobs };
}

export async function deactivate(): Promise<void> {
  await client?.stop();
  client = undefined;
}
