// The extension's vscode-free pieces: op-matrix heatmaps rendered to SVG in Node, statement wording, the files a
// decompile writes, and the engine worker answering a real job over worker_threads.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { beforeAll, describe, expect, it } from 'vitest';
import { heatmapSvg, binsSvg, frontierSvg, svgDataUri } from '../../client/src/views/plots';
import { kindInWords, statementInputs } from '../../client/src/views/describe';
import { extractOutputs, type ModelInfo, type WorkerToHost } from '../../client/src/workers/protocol';
import type { Statement } from '../../server/src/program/types';

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
