// `rasp check` on a hand-written hypothesis: the API's per-bin match equals an independent count (float64
// reference forward + interpreter + the task's scoring rule), and the CLI prints the agreed JSON shape.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { checkProgram } from '../../server/src/check';
import { loadProgramFile } from '../../server/src/language/load';
import { initBackend } from '../../server/src/model/backend';
import { loadModel } from '../../server/src/model/load';
import { referenceLogits } from '../../server/src/model/reference';
import { runBatch } from '../../server/src/interpreter';
import { getTask, parseSequence, sampleBins, sequenceMatches } from '../../server/src/tasks';
import { tinyModel, type TinyModel } from '../decompile/fixture';

const HYPOTHESIS = `program "majority hypothesis"
vocab [0, 1, <bos>, <sep>, <eos>, <pad>]
positions 154
output softmax
task bin_majority

a1 = aggregate(s=[], v=token)
logits1 = project(inp=a1, op=(inp==out))
prediction = softmax(logits1)
`;

const WRONG_VOCAB = HYPOTHESIS.replace('vocab [0, 1, <bos>, <sep>, <eos>, <pad>]', 'vocab [a, b, <bos>, <sep>, <eos>, <pad>]').replace('task bin_majority', 'task bce_D2');

let model: TinyModel;
let file: string;

beforeAll(async () => {
  await initBackend('wasm');
  model = await tinyModel('bin_majority', { std: 0.3, seed: 21 });
  file = join(dirname(model.dir), 'hypothesis.rasp');
  writeFileSync(file, HYPOTHESIS);
});

describe('checkProgram', () => {
  it('counts the sequences whose decisions agree at every scored position, per bin', async () => {
    const program = await loadProgramFile(file);
    const loaded = await loadModel(model.dir);
    const bins: [number, number][] = [
      [1, 10],
      [11, 30],
    ];
    const r = await checkProgram(program, loaded, { lengths: bins, samples: 25, seed: 4 });
    expect(r.bins.map((b) => b.lengths)).toEqual(bins);
    expect(r.bins.map((b) => b.samples)).toEqual([25, 25]);
    const task = getTask('bin_majority');
    const seqs = sampleBins(task, bins, 25, 4);
    seqs.forEach((bin, i) => {
      const results = runBatch(program, bin);
      const agree = bin.filter((seq, k) => sequenceMatches(task, seq, results[k].logits, referenceLogits(model.config, model.weights, seq))).length;
      // float32 (tfjs) vs float64 (reference) may split an exact tie in at most one sequence
      expect(Math.abs(r.bins[i].match * 25 - agree)).toBeLessThanOrEqual(1);
    });
    expect(r.match).toBeCloseTo((r.bins[0].match + r.bins[1].match) / 2, 10);
    // disagreements name the input and a scored position
    for (const d of r.disagreements) {
      const seq = parseSequence(task, d.input);
      expect(task.scoredPositions(seq)).toContain(d.position);
    }
  });
});

describe('rasp check (CLI)', () => {
  const rasp = (args: string[]) => spawnSync(process.execPath, ['bin/rasp.cjs', ...args], { encoding: 'utf8', timeout: 300_000 });

  it('prints {"bins": [...], "match": m} with --json', () => {
    expect(existsSync('out/cli.cjs')).toBe(true);
    const r = rasp(['check', file, '--model', model.dir, '--json', '--samples', '12', '--lengths', '1-20,21-40', '--seed', '3']);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { bins: { lengths: number[]; match: number; samples: number }[]; match: number };
    expect(Object.keys(j).sort()).toEqual(['bins', 'match']);
    expect(j.bins.map((b) => b.lengths)).toEqual([
      [1, 20],
      [21, 40],
    ]);
    expect(j.bins.every((b) => b.samples === 12 && b.match >= 0 && b.match <= 1)).toBe(true);
    expect(j.match).toBeCloseTo((j.bins[0].match + j.bins[1].match) / 2, 10);
  });

  it("refuses a program written for another task or vocabulary", () => {
    const wrong = join(dirname(model.dir), 'wrong.rasp');
    writeFileSync(wrong, WRONG_VOCAB);
    const r = rasp(['check', wrong, '--model', model.dir, '--json']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('written for task bce_D2 but the model is a bin_majority model');
    expect(r.stdout).toBe('');
    const vocab = join(dirname(model.dir), 'vocab.rasp');
    writeFileSync(vocab, HYPOTHESIS.replace('vocab [0, 1,', 'vocab [x, y,'));
    const v = rasp(['check', vocab, '--model', model.dir, '--json']);
    expect(v.status).toBe(1);
    expect(v.stderr).toContain("is not task bin_majority's");
  });

  it('rejects bad options', () => {
    const r = rasp(['check', file, '--model', model.dir, '--samples', '0']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('--samples');
  });
});
