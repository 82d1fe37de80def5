// The extension's vscode-free pieces: op-matrix heatmaps rendered to SVG in Node, statement wording, the files a
// decompile writes, and the engine worker answering a real job over worker_threads.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { beforeAll, describe, expect, it } from 'vitest';
import { heatmapSvg, binsSvg, frontierSvg, svgDataUri } from '../../client/src/views/plots';
import { kindInWords, statementInputs } from '../../client/src/views/describe';
import { extractOutputs, type CheckReport, type ModelInfo, type WorkerToHost } from '../../client/src/workers/protocol';
import { arrangeStatementHover, HOVER_PICTURE_MAX_HEIGHT, provenanceLine, SECTION_SEPARATOR, sizedImage } from '../../client/src/views/hoverLayout';
import { loadProgramFile } from '../../server/src/language/load';
import { parseText } from '../../server/src/language/parse';
import { statementHover } from '../../server/src/lsp/hover';
import { writeProgramFiles } from '../../server/src/program/print';
import type { Statement } from '../../server/src/program/types';
import { exactModel, flipSelect } from '../check/exact';

const ROOT = path.resolve(__dirname, '..', '..');

describe('heatmap SVG', () => {
  it('draws one cell per matrix entry with the row and column labels', async () => {
    const data = new Float64Array([1, 0, -1, 0.5, 2, -2]);
    const { svg, truncated } = await heatmapSvg({ rows: 2, cols: 3, data }, { rowLabels: ['a', 'b'], colLabels: ['x', 'y', 'z'], rowTitle: 'q', colTitle: 'k', textColor: '#333' });
    expect(truncated).toBe(false);
    expect(svg.startsWith('<svg')).toBe(true);
    // vega labels every cell with its fields (aria-label), so each entry is findable.
    const cells = svg.match(/aria-roledescription="rect mark"/g) ?? [];
    expect(cells.length).toBe(6);
    for (const label of ['>a<', '>b<', '>x<', '>y<', '>z<']) expect(svg).toContain(label);
    expect(svgDataUri(svg)).toMatch(/^data:image\/svg\+xml;base64,/);
  });

  it('truncates large bases', async () => {
    const n = 60;
    const { svg, truncated } = await heatmapSvg({ rows: n, cols: n, data: new Float64Array(n * n) }, { rowLabels: [], colLabels: [], rowTitle: 'q', colTitle: 'k', textColor: '#333' });
    expect(truncated).toBe(true);
    expect((svg.match(/aria-roledescription="rect mark"/g) ?? []).length).toBe(48 * 48);
  });

  it('plots the frontier and the bins', async () => {
    const f = await frontierSvg([{ edges: 3, match: 0.5, kind: 'run' }, { edges: 12, match: 0.98, kind: 'emitted' }, { edges: 15, match: 1, kind: 'faithful' }], 0.9);
    expect(f).toContain('emitted program');
    const b = await binsSvg([{ lengths: [0, 50], value: 1 }, { lengths: [51, 100], value: 0.25 }], 'match');
    expect(b).toContain('51-100');
    expect(b).toContain('0.25');
  });
});

describe('hover layout', () => {
  const text = `program "t"
vocab [a, b, <bos>, <sep>, <eos>, <pad>]
positions 8
output sigmoid
d_head 4
matrix M1 = [[1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1]]
s1 = select(q=token, k=token, op=M1)  # layer 0 head 1 q=wte k=wpe
a1 = aggregate(s=s1, v=token)  # layer 0 head 1 v=wte
logits1 = project(inp=a1, op=(inp==out))
prediction = sigmoid(logits1)
`;

  it("puts a one-line provenance and the picture right after the server's summary, before the details", () => {
    const { build } = parseText(text);
    const info = build.statements.find((st) => st.statement.name === 's1')!;
    // the language server's own hover text for the select
    const server = statementHover({ info, result: build });
    expect(server).toContain('**From** layer 0 head 1');
    const top = provenanceLine(info.statement.provenance!);
    expect(top).toBe('**From** layer 0 head 1 · query: token · key: position');
    const arranged = arrangeStatementHover(server, [top], ['![op matrix of s1](data:image/svg+xml;base64,AAAA)', 'LINKS'])!;
    const at = (needle: string, from = 0) => {
      const i = arranged.indexOf(needle, from);
      expect(i, needle).toBeGreaterThanOrEqual(0);
      return i;
    };
    const order = [at('**select** `s1`'), at(top), at('![op matrix of s1]'), at('LINKS'), at('Op: matrix'), at('**From** layer 0 head 1\n')];
    expect([...order].sort((x, y) => x - y)).toEqual(order);
    // summary, provenance line, picture and links form the first section; nothing of the server's text is lost
    expect(arranged.split(SECTION_SEPARATOR)[0]).toContain('LINKS');
    for (const part of server.split(SECTION_SEPARATOR).flatMap((sec) => sec.split('\n\n'))) expect(arranged).toContain(part);
    // without a one-line provenance the server's own goes up
    const agg = statementHover({ info: build.statements.find((st) => st.statement.name === 'a1')!, result: build });
    const links = arrangeStatementHover(agg, [], ['LINKS'])!;
    expect(links.indexOf('**From**')).toBeLessThan(links.indexOf('LINKS'));
    // not a statement hover: left to the caller
    expect(arrangeStatementHover('plain text', [], ['x'])).toBeUndefined();
  });

  it('scales a tall picture down to the hover budget', async () => {
    const n = 40;
    const { svg } = await heatmapSvg({ rows: n, cols: 6, data: new Float64Array(n * 6).fill(1) }, { rowLabels: [], colLabels: [], rowTitle: 'q', colTitle: 'k', textColor: '#333', maxSide: 120 });
    const md = sizedImage('m', 'data:x', svg);
    const dims = /\|width=(\d+),height=(\d+)\)$/.exec(md);
    expect(dims, md).not.toBeNull();
    expect(Number(dims![2])).toBe(HOVER_PICTURE_MAX_HEIGHT);
    expect(sizedImage('m', 'data:x', '<svg width="50" height="40"></svg>')).toBe('![m](data:x)');
  });
});

describe('statement wording', () => {
  it('names what a line reads', () => {
    const agg: Statement = { kind: 'aggregate', name: 'a1', line: 3, selectors: ['s1', 's2'], v: 'token' };
    expect(kindInWords(agg)).toContain('softmax(`s1` + `s2`)');
    expect(statementInputs(agg)).toEqual(['s1', 's2', 'token']);
    const bias: Statement = { kind: 'project', name: 'logits2', line: 4, op: { kind: 'matrix', ref: 'M1' } };
    expect(kindInWords(bias)).toBe('constant logit bias');
    expect(statementInputs(bias)).toEqual([]);
  });
});

describe('extract outputs', () => {
  it('lists the program, its faithful twin, their sidecars and the report', () => {
    expect(extractOutputs('/m/x.rasp').map((f) => path.basename(f))).toEqual([
      'x.rasp',
      'x.weights.safetensors',
      'x.unpruned.rasp',
      'x.unpruned.weights.safetensors',
      'x.report.json',
    ]);
  });
});

describe('engine worker', () => {
  const worker = path.join(ROOT, 'out', 'engineWorker.cjs');
  const model = path.join(ROOT, 'examples', 'models', 'bce_D2-1l1h16d');
  beforeAll(() => {
    if (!fs.existsSync(worker)) execFileSync('node', ['esbuild.mjs'], { cwd: ROOT });
  });

  function run(job: unknown): Promise<WorkerToHost[]> {
    return new Promise((resolve, reject) => {
      const w = new Worker(worker, { workerData: job });
      const seen: WorkerToHost[] = [];
      w.on('message', (m: WorkerToHost) => {
        seen.push(m);
        if (m.type !== 'progress') void w.terminate().then(() => resolve(seen));
      });
      w.on('error', reject);
    });
  }

  it.runIf(fs.existsSync(model))('reads a model folder', async () => {
    const msgs = await run({ kind: 'modelInfo', dir: model });
    const last = msgs[msgs.length - 1];
    expect(last.type).toBe('result');
    const info = (last as { value: ModelInfo }).value;
    const config = JSON.parse(fs.readFileSync(path.join(model, 'config.json'), 'utf8')) as { n_layer: number; n_embd: number };
    expect(info.nLayer).toBe(config.n_layer);
    expect(info.nEmbd).toBe(config.n_embd);
    expect(info.task).toBe('bce_D2');
    expect(info.knownTasks).toContain('bce_D2');
  });

  it('locates the first disagreeing statement of a check job', async () => {
    const exact = await exactModel(7);
    const file = path.join(path.dirname(exact.dir), 'worker-flipped.rasp');
    await writeProgramFiles(flipSelect(exact.program, 's3'), file, { force: true });
    const line = (await loadProgramFile(file)).statements.find((st) => st.name === 's3')!.line;
    const msgs = await run({ kind: 'check', rasp: file, modelDir: exact.dir, samplesPerBin: 10, seed: 1, backend: 'wasm' });
    const last = msgs[msgs.length - 1];
    expect(last.type, JSON.stringify(last)).toBe('result');
    const report = (last as { value: CheckReport }).value;
    expect(report.match).toBeLessThan(1);
    expect(report.firstDisagreement).toMatchObject({ statement: { name: 's3', line }, sequence: report.disagreements[0].input, position: report.disagreements[0].position });
    expect(report.disagreements[0]).toMatchObject({ statementName: 's3', line });
    expect(report.disagreements[0].reason).toContain('layer 0 head 0');
  });

  it('reports a missing folder as a user error', async () => {
    const msgs = await run({ kind: 'modelInfo', dir: path.join(ROOT, 'no-such-model') });
    const last = msgs[msgs.length - 1];
    expect(last).toMatchObject({ type: 'error', user: true, cancelled: false });
  });

  it.runIf(fs.existsSync(model))('cancels a running accuracy job', async () => {
    const result = await new Promise<WorkerToHost>((resolve, reject) => {
      const w = new Worker(worker, { workerData: { kind: 'accuracy', dir: model, samplesPerBin: 400, seed: 0, backend: 'wasm' } });
      w.on('message', (m: WorkerToHost) => {
        if (m.type === 'progress') w.postMessage({ type: 'cancel' });
        else void w.terminate().then(() => resolve(m));
      });
      w.on('error', reject);
    });
    expect(result).toMatchObject({ type: 'error', cancelled: true });
  });
});
