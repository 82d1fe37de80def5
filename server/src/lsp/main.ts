// The RASP language server (bundled to out/server.cjs). Transport: stdio (`--stdio`) or node IPC (`--node-ipc`),
// chosen by vscode-languageserver from the command line. Custom protocol for the extension:
//   request  rasp/run          { uri, input? }  -> RunResultJson (tokens, prediction, logits, variables)
//   request  rasp/programInfo  { uri }          -> { header, statements: SourceMapRecord[] }
//   notification rasp/setExample { uri, input? } sets (or clears) the input used by inlay hints.
import { startLanguageServer } from 'langium/lsp';
import { NodeFileSystem } from 'langium/node';
import { URI } from 'langium';
import { createConnection, ProposedFeatures, ResponseError, ErrorCodes } from 'vscode-languageserver/node';
import { createRaspServices } from './services';
import { runForRequest } from './runs';
import { sourceMap } from '../program/sourcemap';
import { parseProgramSync, formatDiagnostics } from '../language/load';
import { readFile } from 'node:fs/promises';

const connection = createConnection(ProposedFeatures.all);
const { shared, Rasp } = createRaspServices({ connection, ...NodeFileSystem });

/** Text of an open document, else the file on disk. */
async function textOf(uri: string): Promise<{ text: string; path: string }> {
  const parsed = URI.parse(uri);
  const doc = shared.workspace.LangiumDocuments.getDocument(parsed);
  const path = parsed.scheme === 'file' ? parsed.fsPath : uri;
  if (doc) return { text: doc.textDocument.getText(), path };
  return { text: await readFile(path, 'utf8'), path };
}

function failure(err: unknown): ResponseError<void> {
  return new ResponseError(ErrorCodes.InvalidParams, err instanceof Error ? err.message : String(err));
}

connection.onRequest('rasp/run', async (params: { uri: string; input?: string }) => {
  try {
    const parsed = URI.parse(params.uri);
    const doc = shared.workspace.LangiumDocuments.getDocument(parsed);
    const program = doc ? await Rasp.rasp.runs.programOf(doc) : parsed.fsPath;
    return await runForRequest(program, params.input);
  } catch (err) {
    return failure(err);
  }
});

connection.onRequest('rasp/programInfo', async (params: { uri: string }) => {
  try {
    const { text, path } = await textOf(params.uri);
    const { program, diagnostics } = parseProgramSync(text, path);
    if (!program) throw new Error(`the program has errors:\n${formatDiagnostics(path, diagnostics)}`);
    return { header: program.header, statements: sourceMap(program) };
  } catch (err) {
    return failure(err);
  }
});

connection.onNotification('rasp/setExample', (params: { uri: string; input?: string }) => {
  Rasp.rasp.runs.setInput(params.uri, params.input);
  void connection.languages.inlayHint.refresh().catch(() => undefined);
});

startLanguageServer(shared);
