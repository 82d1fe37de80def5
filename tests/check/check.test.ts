// `rasp check` on a hand-written hypothesis: the API's per-bin match equals an independent count (float64
// reference forward + interpreter + the task's scoring rule), and the CLI prints the agreed JSON shape.
// The first disagreeing statement: a tiny model with a program that computes exactly what it computes (exact.ts),
// made wrong in one select or one projection; the check must mark that select, or the prediction line.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { checkProgram } from '../../server/src/check';
import { modelJudge } from '../../server/src/decompile/primitives';
import { loadProgramFile } from '../../server/src/language/load';
import { initBackend } from '../../server/src/model/backend';
import { loadModel } from '../../server/src/model/load';
import { referenceLogits } from '../../server/src/model/reference';
import { runBatch } from '../../server/src/interpreter';
import { getTask, parseSequence, sampleBins, sequenceMatches } from '../../server/src/tasks';
import { writeProgramFiles } from '../../server/src/program/print';
import type { Program } from '../../server/src/program/types';
import { tinyModel, type TinyModel } from '../decompile/fixture';
import { exactModel, flipProjection, flipSelect, type ExactModel } from './exact';

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

  it('counts what the primitives stage confirmed without running it again, with the numbers of a full run', async () => {
    const program = await loadProgramFile(file);
    const loaded = await loadModel(model.dir);
    const task = getTask('bin_majority');
    const bins: [number, number][] = [
      [1, 10],
      [11, 30],
    ];
    const full = await checkProgram(program, loaded, { lengths: bins, samples: 25, seed: 4 });
    // the judge's check set is rasp check's (same bins, samples, seed): its confirmation runs the program exactly
    const judge = await modelJudge(loaded, task, { bins, screenPerBin: 4, checkPerBin: 25, checkSeed: 4 });
    const before = judge.knownOnCheckSet(program);
    expect(before(0, 0)).toBeUndefined();
    expect(await judge.confirm(program)).toBeCloseTo(full.match, 12);
    const known = judge.knownOnCheckSet(program);
    const flags = bins.flatMap((_, b) => Array.from({ length: 25 }, (_, i) => known(b, i)));
    expect(flags.every((f) => f !== undefined)).toBe(true);
    expect(flags.filter((f) => f === true).length).toBe(Math.round(full.match * 50));
    expect(known(2, 0)).toBeUndefined();
    const reused = await checkProgram(program, loaded, { lengths: bins, samples: 25, seed: 4, knownMatches: known });
    expect(reused).toEqual(full);
    // another program's predictions are not known
    const other: Program = { ...program, statements: program.statements.filter((st) => st.kind !== 'project').map((st) => (st.kind === 'prediction' ? { ...st, terms: [] } : st)) };
    expect(judge.knownOnCheckSet(other)(0, 0)).toBeUndefined();
    // known sequences are not run: claiming every one matches gives 1 whatever the program computes
    expect(full.match).toBeLessThan(1);
    expect((await checkProgram(program, loaded, { lengths: bins, samples: 25, seed: 4, knownMatches: () => true })).match).toBe(1);
  });

  it('puts disagreements of a program without provenance on its prediction line', async () => {
    const program = await loadProgramFile(file);
    const loaded = await loadModel(model.dir);
    const r = await checkProgram(program, loaded, { lengths: [[1, 30]], samples: 25, seed: 4, locate: true });
    expect(r.disagreements.length).toBeGreaterThan(0);
    const prediction = program.statements.find((s) => s.kind === 'prediction')!;
    expect(r.firstDisagreement).toMatchObject({ sequence: r.disagreements[0].input, position: r.disagreements[0].position, statement: { name: 'prediction', line: prediction.line } });
    expect(r.firstDisagreement!.reason).toContain('no statement cites a model component');
    for (const d of r.disagreements) expect(d.statement).toBe('prediction');
  });
});

describe('rasp check (CLI)', () => {
  const rasp = (args: string[]) => spawnSync(process.execPath, ['bin/rasp.cjs', ...args], { encoding: 'utf8', timeout: 300_000 });

  it('prints {"bins": [...], "match": m} with --json', () => {
    expect(existsSync('out/cli.cjs')).toBe(true);
    const r = rasp(['check', file, '--model', model.dir, '--json', '--samples', '12', '--lengths', '1-20,21-40', '--seed', '3']);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { bins: { lengths: number[]; match: number; samples: number }[]; match: number; firstDisagreement: unknown };
    expect(Object.keys(j).sort()).toEqual(['bins', 'firstDisagreement', 'match']);
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

describe('the first disagreeing statement', () => {
  const BINS: [number, number][] = [
    [2, 10],
    [11, 24],
  ];
  let exact: ExactModel;
  let dir: string;

  beforeAll(async () => {
    await initBackend('wasm');
    exact = await exactModel(7);
    dir = dirname(exact.dir);
  });

  /** Writes a variant of the exact program and loads it back, so statements carry their lines. */
  async function written(program: Program, name: string): Promise<{ file: string; program: Program }> {
    const out = join(dir, `${name}.rasp`);
    await writeProgramFiles(program, out, { force: true });
    return { file: out, program: await loadProgramFile(out) };
  }

  it('finds nothing to mark when the program computes what the model computes', async () => {
    const { program } = await written(exact.program, 'exact');
    const r = await checkProgram(program, await loadModel(exact.dir), { lengths: BINS, samples: 40, seed: 1, locate: true });
    expect(r.match).toBe(1);
    expect(r.firstDisagreement).toBeNull();
  });

  // One select of each head: the head is found by giving the program the model's attention head by head, the select
  // by what the attention scores miss.
  for (const [name, head] of [
    ['s2', 0],
    ['s7', 1],
  ] as const) {
    it(`marks ${name} (head ${head}) when its op is flipped`, async () => {
      const { program } = await written(flipSelect(exact.program, name), `flipped-${name}`);
      const line = program.statements.find((s) => s.name === name)!.line;
      expect(line).toBeGreaterThan(0);
      const r = await checkProgram(program, await loadModel(exact.dir), { lengths: BINS, samples: 40, seed: 1, locate: true });
      expect(r.match).toBeLessThan(1);
      expect(r.firstDisagreement).toMatchObject({ sequence: r.disagreements[0].input, position: r.disagreements[0].position, statement: { name, line } });
      expect(r.firstDisagreement!.reason).toContain(`the scores of ${name} depart from the model's own score term for layer 0 head ${head}`);
      expect(r.firstDisagreement!.reason).toContain("with the model's term in its place the program decides like the model");
      // every disagreement listed goes back to the same select
      for (const d of r.disagreements) expect({ statement: d.statement, line: d.line }).toEqual({ statement: name, line });
    });
  }

  it('without paths to compare a select with, finds the head by its attention and the select by what it misses', async () => {
    // annotations without q=/k=: no score term per select, so the head's attention is what is compared
    const flipped = flipSelect(exact.program, 's6');
    const bare: Program = { ...flipped, statements: flipped.statements.map((st) => (st.provenance ? { ...st, provenance: { ...st.provenance, paths: {} } } : st)) };
    const { program } = await written(bare, 'flipped-bare');
    const line = program.statements.find((st) => st.name === 's6')!.line;
    expect(program.statements.find((st) => st.name === 's6')!.provenance).toMatchObject({ layer: 0, head: 1, paths: {} });
    const r = await checkProgram(program, await loadModel(exact.dir), { lengths: BINS, samples: 40, seed: 1, locate: true });
    expect(r.firstDisagreement!.statement).toEqual({ name: 's6', line });
    expect(r.firstDisagreement!.reason).toMatch(/the attention of layer 0 head 1 at position \d+ differs from the model's/);
    expect(r.firstDisagreement!.reason).toContain("with the model's own attention for this head and the 1 head before it the program decides like the model");
    expect(r.firstDisagreement!.reason).toMatch(/follows s6's scores \(correlation -1\.00/);
  });

  it('marks the prediction line when a projection is wrong and every head attends as in the model', async () => {
    const { program } = await written(flipProjection(exact.program, 'logits1'), 'flipped-projection');
    const r = await checkProgram(program, await loadModel(exact.dir), { lengths: BINS, samples: 40, seed: 1, locate: true });
    expect(r.match).toBeLessThan(1);
    const prediction = program.statements.find((s) => s.kind === 'prediction')!;
    expect(r.firstDisagreement!.statement).toEqual({ name: 'prediction', line: prediction.line });
    expect(r.firstDisagreement!.reason).toContain("still differ with the model's own attention in every head");
  });

  it('rasp check --json reports the first disagreement with the marked line', async () => {
    const { file: flipped, program } = await written(flipSelect(exact.program, 's2'), 'cli-flipped');
    const line = program.statements.find((s) => s.name === 's2')!.line;
    const r = spawnSync(process.execPath, ['bin/rasp.cjs', 'check', flipped, '--model', exact.dir, '--json', '--samples', '20', '--lengths', '2-10,11-24', '--seed', '1'], { encoding: 'utf8', timeout: 300_000 });
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { match: number; firstDisagreement: { sequence: string; position: number; statement: { line: number; name: string }; reason: string } };
    expect(j.match).toBeLessThan(1);
    expect(j.firstDisagreement.statement).toEqual({ line, name: 's2' });
    expect(readFileSync(flipped, 'utf8').split('\n')[line - 1]).toMatch(/^s2 = select\(/);
    expect(j.firstDisagreement.reason).toContain('layer 0 head 0');
    expect(j.firstDisagreement.sequence.split(' ').length).toBeGreaterThan(j.firstDisagreement.position);
    const text = spawnSync(process.execPath, ['bin/rasp.cjs', 'check', flipped, '--model', exact.dir, '--samples', '20', '--lengths', '2-10,11-24', '--seed', '1'], { encoding: 'utf8', timeout: 300_000 });
    expect(text.stdout).toContain(`first disagreeing statement: line ${line} (s2)`);
    const { file: good } = await written(exact.program, 'cli-exact');
    const ok = spawnSync(process.execPath, ['bin/rasp.cjs', 'check', good, '--model', exact.dir, '--json', '--samples', '20', '--lengths', '2-10,11-24'], { encoding: 'utf8', timeout: 300_000 });
    expect(ok.status, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ match: 1, firstDisagreement: null });
  });
});
