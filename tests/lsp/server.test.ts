// Drives the built language server (out/server.cjs) as a separate process over stdio with a real LSP client.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  createProtocolConnection,
  StreamMessageReader,
  StreamMessageWriter,
  type ProtocolConnection,
  type PublishDiagnosticsParams,
  type Diagnostic,
  type Hover,
  type CompletionList,
  type CompletionItem,
  type LocationLink,
  type WorkspaceEdit,
  type SemanticTokens,
  type CodeLens,
  type InlayHint,
  type Location,
  type TextEdit,
} from 'vscode-languageserver-protocol/node';
import { writeProgramFiles } from '../../server/src/program/print';
import type { Matrix, Program } from '../../server/src/program/types';

const root = join(__dirname, '..', '..');
const serverPath = join(root, 'out', 'server.cjs');

let proc: ChildProcess;
let conn: ProtocolConnection;
let dir: string;
const diagnostics = new Map<string, Diagnostic[]>();
const waiters: { uri: string; resolve: (d: Diagnostic[]) => void }[] = [];

function nextDiagnostics(uri: string): Promise<Diagnostic[]> {
  return new Promise((resolve) => waiters.push({ uri, resolve }));
}

async function open(name: string, text: string): Promise<{ uri: string; diags: Diagnostic[] }> {
  const uri = pathToFileURL(join(dir, name)).toString();
  const pending = nextDiagnostics(uri);
  await conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'rasp', version: 1, text } });
  return { uri, diags: await pending };
}

const majority = (): string => readFileSync(join(dir, 'majority.rasp'), 'utf8');

beforeAll(async () => {
  // The test exercises the shipped bundle; build it when a fresh checkout has none yet.
  if (!existsSync(serverPath)) execFileSync(process.execPath, ['esbuild.mjs'], { cwd: root, stdio: 'inherit' });
  dir = mkdtempSync(join(tmpdir(), 'rasp-lsp-'));
  copyFileSync(join(root, 'examples', 'majority.rasp'), join(dir, 'majority.rasp'));
  proc = spawn(process.execPath, [serverPath, '--stdio'], { stdio: ['pipe', 'pipe', 'pipe'] });
  conn = createProtocolConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
  conn.onNotification('textDocument/publishDiagnostics', (p: PublishDiagnosticsParams) => {
    diagnostics.set(p.uri, p.diagnostics);
    const i = waiters.findIndex((w) => w.uri === p.uri);
    if (i >= 0) waiters.splice(i, 1)[0].resolve(p.diagnostics);
  });
  conn.listen();
  const init = await conn.sendRequest('initialize', {
    processId: process.pid,
    rootUri: pathToFileURL(dir).toString(),
    capabilities: {
      textDocument: {
        hover: { contentFormat: ['markdown', 'plaintext'] },
        completion: { completionItem: { snippetSupport: false } },
        semanticTokens: { requests: { full: true }, tokenTypes: [], tokenModifiers: [], formats: ['relative'] },
        inlayHint: {},
        codeLens: {},
        rename: { prepareSupport: true },
      },
      workspace: { workspaceFolders: true },
    },
    workspaceFolders: [{ uri: pathToFileURL(dir).toString(), name: 'w' }],
  });
  expect(init).toHaveProperty('capabilities.hoverProvider');
  await conn.sendNotification('initialized', {});
});

afterAll(async () => {
  try {
    await conn.sendRequest('shutdown');
    await conn.sendNotification('exit');
  } catch {
    // the process may already be gone
  }
  conn?.dispose();
  proc?.kill();
  rmSync(dir, { recursive: true, force: true });
});

describe('language server over stdio', () => {
  it('publishes no diagnostics for a valid program and ranged errors for a broken one', async () => {
    const good = await open('majority.rasp', majority());
    expect(good.diags).toEqual([]);
    const bad = await open('bad.rasp', 'vocab [a, b, <bos>]\npositions 8\na1 = aggregate(s=[], v=tok)\nl = project(inp=a1, op=(inp==out))\nprediction = softmax(l)\n');
    const d = bad.diags.find((x) => String(x.message).includes("'tok' is not defined"));
    expect(d?.range).toEqual({ start: { line: 2, character: 23 }, end: { line: 2, character: 26 } });
    expect(d?.severity).toBe(1);
  });

  it('hover explains a statement, its basis and provenance', async () => {
    const uri = pathToFileURL(join(dir, 'majority.rasp')).toString();
    const line = majority().split('\n').findIndex((l) => l.startsWith('a1 ='));
    const hover = (await conn.sendRequest('textDocument/hover', { textDocument: { uri }, position: { line, character: 10 } })) as Hover;
    const text = (hover.contents as { value: string }).value;
    expect(text).toContain('**aggregate**');
    expect(text).toContain('token basis, size 6');
    expect(text).toContain('layer 0 head 0');
    const vocabLine = majority().split('\n').findIndex((l) => l.startsWith('vocab'));
    const vocabHover = (await conn.sendRequest('textDocument/hover', { textDocument: { uri }, position: { line: vocabLine, character: 2 } })) as Hover;
    expect((vocabHover.contents as { value: string }).value).toContain('6 tokens in id order');
  });

  it('hover lists a line\'s head dims with their scores and says how many more the annotation left out', async () => {
    const src = 'vocab [a, b, <bos>]\npositions 8\ns1 = select(q=pos, k=pos, op=(k<q))\t# layer 0 head 1 q=wpe k=wpe dims=1:0.7,4:0.2,+5\na1 = aggregate(s=s1, v=token)\nl = project(inp=a1, op=(inp==out))\nprediction = softmax(l)\n';
    const { uri } = await open('dims.rasp', src);
    const hover = (await conn.sendRequest('textDocument/hover', { textDocument: { uri }, position: { line: 2, character: 2 } })) as Hover;
    expect((hover.contents as { value: string }).value).toContain("head dimensions: 1 (0.7), 4 (0.2) and 5 more (the report's `primitives.heads` lists them)");
  });

  it('completion offers keywords, variables in scope and primitive labels', async () => {
    const uri = pathToFileURL(join(dir, 'majority.rasp')).toString();
    const line = majority().split('\n').findIndex((l) => l.startsWith('prediction'));
    const list = (await conn.sendRequest('textDocument/completion', { textDocument: { uri }, position: { line, character: 0 } })) as CompletionList | CompletionItem[];
    const labels = (Array.isArray(list) ? list : list.items).map((i) => i.label);
    expect(labels).toEqual(expect.arrayContaining(['a1', 'logits1', 'token', 'harden', 'matrix']));
    // Inside a select's op=( ... only labels are offered.
    const { uri: u2 } = await open('complete.rasp', 'vocab [a, <bos>]\npositions 4\ns1 = select(q=pos, k=pos, op=(\n');
    const inLabel = (await conn.sendRequest('textDocument/completion', { textDocument: { uri: u2 }, position: { line: 2, character: 30 } })) as CompletionList;
    const l2 = inLabel.items.map((i) => i.label);
    expect(l2).toEqual(expect.arrayContaining(['uniform', 'k==q-1', 'k<q', 'first', '"a"']));
    expect(l2).not.toContain('inp==out');
  });

  it('go to definition, references and rename follow the symbol table', async () => {
    const uri = pathToFileURL(join(dir, 'majority.rasp')).toString();
    const lines = majority().split('\n');
    const defLine = lines.findIndex((l) => l.startsWith('a1 ='));
    const useLine = lines.findIndex((l) => l.startsWith('logits1'));
    const useChar = lines[useLine].indexOf('a1');
    const defs = (await conn.sendRequest('textDocument/definition', { textDocument: { uri }, position: { line: useLine, character: useChar + 1 } })) as LocationLink[];
    expect(defs[0].targetRange).toEqual({ start: { line: defLine, character: 0 }, end: { line: defLine, character: 2 } });
    const refs = (await conn.sendRequest('textDocument/references', { textDocument: { uri }, position: { line: defLine, character: 0 }, context: { includeDeclaration: true } })) as Location[];
    expect(refs).toHaveLength(2);
    const edit = (await conn.sendRequest('textDocument/rename', { textDocument: { uri }, position: { line: defLine, character: 1 }, newName: 'hist' })) as WorkspaceEdit;
    const edits = edit.changes![uri] as TextEdit[];
    expect(edits.map((e) => e.newText)).toEqual(['hist', 'hist']);
    expect(edits.map((e) => e.range.start.line).sort()).toEqual([defLine, useLine].sort());
  });

  it('semantic tokens, code lens and inlay hints with the example input', async () => {
    const uri = pathToFileURL(join(dir, 'majority.rasp')).toString();
    const tokens = (await conn.sendRequest('textDocument/semanticTokens/full', { textDocument: { uri } })) as SemanticTokens;
    expect(tokens.data.length).toBeGreaterThanOrEqual(5 * 6);
    const lenses = (await conn.sendRequest('textDocument/codeLens', { textDocument: { uri } })) as CodeLens[];
    expect(lenses).toHaveLength(1);
    expect(lenses[0].command).toMatchObject({ command: 'rasp.runProgram', arguments: [uri] });
    const n = majority().split('\n').length;
    const hints = (await conn.sendRequest('textDocument/inlayHint', { textDocument: { uri }, range: { start: { line: 0, character: 0 }, end: { line: n, character: 0 } } })) as InlayHint[];
    const labels = hints.map((h) => String(h.label));
    // Example "<bos> 1 0 1 1 <sep>": the prediction at the last position is 1.
    expect(labels.some((l) => /\| 1\]$/.test(l))).toBe(true);
    expect(labels.some((l) => l.includes('<bos>'))).toBe(true);
    // A client-set example changes the hints: "<bos> 0 0 1 <sep>" ends in 0.
    await conn.sendNotification('rasp/setExample', { uri, input: '<bos> 0 0 1 <sep>' });
    const hints2 = (await conn.sendRequest('textDocument/inlayHint', { textDocument: { uri }, range: { start: { line: 0, character: 0 }, end: { line: n, character: 0 } } })) as InlayHint[];
    expect(hints2.map((h) => String(h.label)).some((l) => /\| 0\]$/.test(l))).toBe(true);
  });

  it('rasp/run and rasp/programInfo answer for the extension', async () => {
    const uri = pathToFileURL(join(dir, 'majority.rasp')).toString();
    const run = (await conn.sendRequest('rasp/run', { uri, input: '<bos> 1 0 1 1 <sep>' })) as { prediction: string[]; variables: Record<string, unknown> };
    expect(run.prediction.at(-1)).toBe('1');
    expect(Object.keys(run.variables)).toContain('a1');
    const info = (await conn.sendRequest('rasp/programInfo', { uri })) as { header: { vocab: string[] }; statements: { name: string; layer: number | null }[] };
    expect(info.header.vocab).toHaveLength(6);
    expect(info.statements[0]).toMatchObject({ name: 'a1', layer: 0 });
    await expect(conn.sendRequest('rasp/run', { uri, input: '<bos> 7' })).rejects.toThrow(/7/);
  });

  it('document symbols and folding ranges', async () => {
    const dyck = readFileSync(join(root, 'examples', 'dyck.rasp'), 'utf8');
    const { uri, diags } = await open('dyck.rasp', dyck);
    expect(diags).toEqual([]);
    const symbols = (await conn.sendRequest('textDocument/documentSymbol', { textDocument: { uri } })) as { name: string }[];
    expect(symbols.map((s) => s.name)).toEqual(expect.arrayContaining(['a', 'b', 'c', 's1', 'a1', 'diff_01_a1', 'logits1', 'logits2', 'logits3', 'prediction']));
    const folds = (await conn.sendRequest('textDocument/foldingRange', { textDocument: { uri } })) as { startLine: number; endLine: number }[];
    const bLine = dyck.split('\n').findIndex((l) => l.startsWith('matrix b'));
    expect(folds.some((f) => f.startLine === bLine && f.endLine > bLine + 10)).toBe(true);
    // Formatting keeps the paper's line breaks inside special_op and the prediction sum.
    const edits = (await conn.sendRequest('textDocument/formatting', { textDocument: { uri }, options: { tabSize: 2, insertSpaces: false } })) as TextEdit[];
    const formatted = applyEdits(dyck, edits);
    expect(formatted).toContain('op=(inp==out),\n\t\tspecial_op=(out==EOS))');
    expect(formatted).toContain('sigmoid(logits1+\n');
  });

  it('reads the sidecar for validation and runs opaque MLP lines; a missing sidecar is reported', async () => {
    const vocab = ['a', 'b', '<bos>', '<sep>', '<eos>', '<pad>'];
    const d = 8;
    const mat = (rows: number, cols: number, s: number): Matrix => ({ rows, cols, data: Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * s) / 4) });
    const program: Program = {
      header: { vocab, special: { bos: 2, sep: 3, eos: 4, pad: 5 }, positions: 20, output: 'softmax', example: '<bos> a b a' },
      statements: [
        { kind: 'select', name: 's1', line: 0, q: 'pos', k: 'pos', op: { kind: 'matrix', ref: 'B' } },
        { kind: 'aggregate', name: 'a1', line: 0, selectors: ['s1'], v: 'token' },
        { kind: 'elementwise', name: 'new_a1', line: 0, fn: { name: 'mlp', ref: 'new_a1' }, inputs: ['a1'] },
        { kind: 'project', name: 'logits1', line: 0, inp: 'new_a1', op: { kind: 'matrix', ref: 'R' } },
        { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['logits1'] },
      ],
      matrices: new Map([
        ['B', mat(20, 20, 0.1)],
        ['R', mat(d, 6, 0.2)],
      ]),
      mlps: new Map([['new_a1', { inputEmbeddings: [mat(6, d, 0.3)], lnGamma: new Float32Array(d).fill(1), lnVariance: 1, lnEps: 1e-5, fcW: mat(d, 4 * d, 0.7), fcB: new Float32Array(4 * d), projW: mat(4 * d, d, 1.1), projB: new Float32Array(d) }]]),
    };
    await writeProgramFiles(program, join(dir, 'mlp.rasp'));
    const text = readFileSync(join(dir, 'mlp.rasp'), 'utf8');
    const { uri, diags } = await open('mlp.rasp', text);
    expect(diags).toEqual([]);
    const hints = (await conn.sendRequest('textDocument/inlayHint', { textDocument: { uri }, range: { start: { line: 0, character: 0 }, end: { line: 100, character: 0 } } })) as InlayHint[];
    expect(hints.length).toBeGreaterThanOrEqual(4);
    const missing = await open('nosidecar.rasp', text.replace('mlp.weights.safetensors', 'gone.safetensors'));
    const weightsLine = text.split('\n').findIndex((l) => l.startsWith('weights'));
    expect(missing.diags.find((x) => String(x.message).includes('gone.safetensors'))?.range.start.line).toBe(weightsLine);
  });

  it('renaming a line with an implicit op renames its matrix too', async () => {
    const text = 'vocab [a, <bos>]\npositions 4\nmatrix s1[4, 4] = [[0,0,0,0],[1,0,0,0],[0,1,0,0],[0,0,1,0]]\ns1 = select(q=pos, k=pos)\na1 = aggregate(s=s1, v=token)\nl = project(inp=a1, op=(inp==out))\nprediction = softmax(l)\n';
    const { uri, diags } = await open('implicit.rasp', text);
    expect(diags).toEqual([]);
    const edit = (await conn.sendRequest('textDocument/rename', { textDocument: { uri }, position: { line: 3, character: 0 }, newName: 'prev' })) as WorkspaceEdit;
    const after = applyEdits(text, edit.changes![uri] as TextEdit[]);
    expect(after).toContain('matrix prev[4, 4]');
    expect(after).toContain('prev = select(q=pos, k=pos)');
    expect(after).toContain('aggregate(s=prev, v=token)');
  });

  it('answers every request on a document with syntax errors', async () => {
    const text = 'vocab [a, <bos>]\npositions 4\na1 = aggregate(s=[], v=\ns1 = select(q=pos k=pos, op=(k<\nprediction = softmax(\n';
    const { uri, diags } = await open('broken.rasp', text);
    expect(diags.length).toBeGreaterThan(0);
    const at = { textDocument: { uri }, position: { line: 3, character: 3 } };
    await conn.sendRequest('textDocument/hover', at);
    const completion = (await conn.sendRequest('textDocument/completion', at)) as CompletionList;
    expect(completion.items.length).toBeGreaterThan(0);
    const whole = { start: { line: 0, character: 0 }, end: { line: 10, character: 0 } };
    await conn.sendRequest('textDocument/semanticTokens/full', { textDocument: { uri } });
    expect(await conn.sendRequest('textDocument/inlayHint', { textDocument: { uri }, range: whole })).toEqual([]);
    await conn.sendRequest('textDocument/codeLens', { textDocument: { uri } });
    await conn.sendRequest('textDocument/documentSymbol', { textDocument: { uri } });
    await conn.sendRequest('textDocument/definition', at);
    await conn.sendRequest('textDocument/references', { ...at, context: { includeDeclaration: true } });
  });

  it('formatting normalises spacing', async () => {
    const { uri } = await open('messy.rasp', 'vocab [a, <bos>]\npositions 4\na1=aggregate( s=[] ,v=token )\nl  =  project(inp=a1,op=(inp==out))\nprediction = softmax(l)\n');
    const edits = (await conn.sendRequest('textDocument/formatting', { textDocument: { uri }, options: { tabSize: 2, insertSpaces: true } })) as TextEdit[];
    expect(edits.length).toBeGreaterThan(0);
    const text = applyEdits('vocab [a, <bos>]\npositions 4\na1=aggregate( s=[] ,v=token )\nl  =  project(inp=a1,op=(inp==out))\nprediction = softmax(l)\n', edits);
    expect(text).toContain('a1 = aggregate(s=[], v=token)');
    expect(text).toContain('l = project(inp=a1, op=(inp==out))');
  });
});

function applyEdits(text: string, edits: TextEdit[]): string {
  const lines = text.split('\n');
  const offset = (p: { line: number; character: number }): number => lines.slice(0, p.line).reduce((n, l) => n + l.length + 1, 0) + p.character;
  const sorted = [...edits].sort((a, b) => offset(b.range.start) - offset(a.range.start));
  let out = text;
  for (const e of sorted) out = out.slice(0, offset(e.range.start)) + e.newText + out.slice(offset(e.range.end));
  return out;
}
