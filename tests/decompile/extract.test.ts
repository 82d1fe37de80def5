// `rasp extract` end to end on a tiny seeded model: files, JSON, check through the interpreter (as a process),
// determinism, no overwrite, Ctrl-C, and provenance: every select and projection's op matrix recomputed from the
// layer, head and paths it cites (and the learned LN variances in the report) equals the one the program carries.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { extract } from '../../server/src/decompile';
import { checkProgram } from '../../server/src/check/index';
import { loadProgramFile } from '../../server/src/language/load';
import { loadModel } from '../../server/src/model/load';
import type { Gpt2Weights } from '../../server/src/model/types';
import type { Program } from '../../server/src/program/types';
import { tinyModel, type TinyModel } from './fixture';

const CLI = 'bin/rasp.cjs';
// --no-primitives: the primitives stage has its own tests; these exercise pruning, emission and the CLI contract
const FAST = ['--runs', '1', '--steps', '60,40,20', '--mlp-steps', '20', '--check-samples', '10', '--no-primitives'];

function rasp(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let model: TinyModel;
let out: string;

beforeAll(async () => {
  if (!existsSync('out/cli.cjs')) throw new Error('run `npm run build` first: the CLI bundle is missing');
  model = await tinyModel('bin_majority', { std: 0.02, seed: 5 });
  out = join(dirname(model.dir), 'prog.rasp');
});

describe('rasp extract (CLI)', () => {
  it('writes the pruned program, the faithful program and the report, and prints one JSON document', () => {
    const r = rasp(['extract', '--model', model.dir, '--out', out, '--json', ...FAST]);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { out: string; lines: number; unprunedLines: number; edges: number; match: number; seconds: number };
    expect(j.out).toBe(out);
    // the faithful twin is the exact unsplit program: 4 pair + 2 key-only selects, 2 aggregates, 1 MLP, 5 + 1
    // projections, prediction; the pruned (split) program has at most every copy: 6 selects, 2 aggregates, 4 MLP
    // copies, 4 + 4 + 1 projections, prediction
    expect(j.unprunedLines).toBe(16);
    expect(j.lines).toBeLessThanOrEqual(22);
    expect(j.match).toBeGreaterThanOrEqual(0);
    for (const f of [out, join(dirname(out), 'prog.unpruned.rasp'), join(dirname(out), 'prog.report.json')]) expect(existsSync(f)).toBe(true);
    const report = JSON.parse(readFileSync(join(dirname(out), 'prog.report.json'), 'utf8'));
    expect(report.task).toBe('bin_majority');
    expect(report.runs.length).toBe(1);
    expect(report.frontier.length).toBeGreaterThanOrEqual(1);
    expect(report.llnA.learnedVariance.bins.length).toBe(3);
    // --mlp auto by default: a model this narrow tries split copies (pre-trained from the faithful MLP, reported
    // next to the faithful fit) and prunes them if they hold the target, else the unsplit network, saying why
    expect(report.llnA.split.final.bins.length).toBe(3);
    expect(report.settings.mlp).toBe(report.llnA.split.used ? 'auto: split' : 'auto: unsplit');
    expect(report.program.mlp).toBe(report.llnA.split.used ? 'split' : 'unsplit');
    if (!report.llnA.split.used) expect(report.llnA.split.reason).toMatch(/split copies [\d.]+, more than 0\.1 below the target 0\.9/);
    expect(report.llnA.faithful.bins.length).toBe(3);
    expect(report.llnA.faithfulFit).toContain('split MLP copies');
    expect(report.program.lines).toBe(j.lines);
    // stage 3 ran in every run (default --stages 3), counting its units
    expect(report.settings.stages).toBe('components, paths, query-key products');
    // the default time budget of a 1-layer model up to width 64 (issue 4): 3 minutes
    expect(report.settings.budgetSeconds).toBe(180);
    expect(report.runs[0].stage3.kept).toBeLessThanOrEqual(report.runs[0].stage3.units);
    expect(['pruned', 'fallback', 'missed', 'no units']).toContain(report.runs[0].stage3.outcome);
    // progress went to stderr, stage by stage
    expect(r.stderr).toContain('stage 1');
  });

  it("names the source neurons of the faithful program's MLP lines (no primitives stage runs on it)", async () => {
    const faithful = await loadProgramFile(join(dirname(out), 'prog.unpruned.rasp'));
    const mlps = faithful.statements.filter((st) => st.kind === 'elementwise' && st.fn.name === 'mlp');
    expect(mlps.length).toBe(1);
    const neurons = mlps[0].provenance?.neurons ?? [];
    expect(neurons.length).toBeGreaterThan(0);
    expect(mlps[0].provenance?.mlp).toBe(true);
    // hidden units of the tiny model's MLP (4 x width 8), each listed once
    for (const n of neurons) expect(n.index).toBeLessThan(32);
    expect(new Set(neurons.map((n) => n.index)).size).toBe(neurons.length);
  });

  it('rasp check reproduces the match the report measured (same seed and samples), through the .rasp file', () => {
    const report = JSON.parse(readFileSync(join(dirname(out), 'prog.report.json'), 'utf8'));
    const r = rasp(['check', out, '--model', model.dir, '--json', '--samples', '10', '--seed', '1000']);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { bins: { lengths: [number, number]; match: number; samples: number }[]; match: number };
    expect(j.bins.map((b) => b.samples)).toEqual([10, 10, 10]);
    expect(j.match).toBeCloseTo(report.program.check.match, 10);
    // the faithful program is faithful: LLN-A with learned variances on a small random model
    const u = rasp(['check', join(dirname(out), 'prog.unpruned.rasp'), '--model', model.dir, '--json', '--samples', '10']);
    expect(u.status, u.stderr).toBe(0);
    expect((JSON.parse(u.stdout) as { match: number }).match).toBeGreaterThanOrEqual(0.9);
  });

  it('never overwrites without --force', () => {
    const before = statSync(out).mtimeMs;
    const r = rasp(['extract', '--model', model.dir, '--out', out, '--json', ...FAST]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('already exists');
    expect(r.stdout).toBe('');
    expect(statSync(out).mtimeMs).toBe(before);
  });

  it('is deterministic for a seed', () => {
    const again = join(dirname(out), 'again.rasp');
    const r = rasp(['extract', '--model', model.dir, '--out', again, '--json', ...FAST]);
    expect(r.status, r.stderr).toBe(0);
    const strip = (s: string): string => s.replace(/^weights .*$/m, '');
    expect(strip(readFileSync(again, 'utf8'))).toBe(strip(readFileSync(out, 'utf8')));
  });

  it('Ctrl-C cancels cleanly and writes nothing', async () => {
    const target = join(dirname(out), 'cancelled.rasp');
    const child = spawn(process.execPath, [CLI, 'extract', '--model', model.dir, '--out', target, '--runs', '3', '--no-primitives'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const code = await new Promise<number | null>((resolveExit) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('stage 1') && !child.killed) child.kill('SIGINT');
      });
      child.on('exit', (c) => resolveExit(c));
    });
    expect(code).toBe(1);
    expect(stderr).toContain('cancelled');
    for (const f of ['cancelled.rasp', 'cancelled.unpruned.rasp', 'cancelled.report.json']) expect(existsSync(join(dirname(out), f))).toBe(false);
  });

  it('rejects bad options with a clear message', () => {
    const rejects = (option: string, value: string, message: string): void => {
      const r = rasp(['extract', '--model', model.dir, '--out', join(dirname(out), 'x.rasp'), option, value]);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(message);
    };
    rejects('--target', '1.5', '--target');
    rejects('--stages', '4', '--stages');
    rejects('--mlp', 'halved', '--mlp must be "auto", "split" or "unsplit"');
    rejects('--budget', 'soon', '--budget must be a number from 1 to 10000000, got "soon"');
    rejects('--long-pool', 'sideways', '--long-pool must be "auto", "prune" or "calibrate"');
    rejects('--calibrate-steps', '-3', '--calibrate-steps');
    const m = rasp(['extract', '--model', join(dirname(out), 'no-such-model')]);
    expect(m.status).toBe(1);
    expect(m.stderr).toContain('no-such-model');
  });
});

// ---- provenance: an independent recomputation from the raw checkpoint weights ----

/** Row-major rows x cols. */
interface M {
  rows: number;
  cols: number;
  data: Float64Array;
}

function mul(a: M, b: M): M {
  const out = new Float64Array(a.rows * b.cols);
  for (let i = 0; i < a.rows; i++) for (let k = 0; k < a.cols; k++) for (let j = 0; j < b.cols; j++) out[i * b.cols + j] += a.data[i * a.cols + k] * b.data[k * b.cols + j];
  return { rows: a.rows, cols: b.cols, data: out };
}
function transpose(a: M): M {
  const out = new Float64Array(a.rows * a.cols);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) out[j * a.rows + i] = a.data[i * a.cols + j];
  return { rows: a.cols, cols: a.rows, data: out };
}
/** The linear layer norm as a d x d matrix: (I - 11^T/d) diag(gamma) / sqrt(var + eps). */
function lnMatrix(gamma: Float32Array, variance: number, eps: number): M {
  const d = gamma.length;
  const s = 1 / Math.sqrt(variance + eps);
  const data = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) data[i * d + j] = ((i === j ? 1 : 0) - 1 / d) * gamma[j] * s;
  return { rows: d, cols: d, data };
}
function cols(w: Float32Array, rows: number, total: number, c0: number, n: number): M {
  const data = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) for (let c = 0; c < n; c++) data[r * n + c] = w[r * total + c0 + c];
  return { rows, cols: n, data };
}

/** A path's embedding (basis x d), read right to left from its name. */
function pathEmbedding(path: string, w: Gpt2Weights, d: number, nHead: number, variances: Record<string, number>, eps: number): M {
  if (path === 'wte') return { rows: w.wte.shape[0], cols: d, data: Float64Array.from(w.wte.data) };
  if (path === 'wpe') return { rows: w.wpe.shape[0], cols: d, data: Float64Array.from(w.wpe.data) };
  const mlp = /^mlp-(\d+)(-.*)?$/.exec(path);
  if (mlp) {
    // an MLP output (unsplit, or a split copy) lives in the residual basis: its embedding is the identity
    const data = new Float64Array(d * d);
    for (let i = 0; i < d; i++) data[i * d + i] = 1;
    return { rows: d, cols: d, data };
  }
  const m = /^attn_output-(\d+)-(\d+)-(.*)$/.exec(path);
  if (!m) throw new Error(`unknown path ${path}`);
  const [l, h] = [Number(m[1]), Number(m[2])];
  const dh = d / nHead;
  const b = w.blocks[l];
  const inner = pathEmbedding(m[3], w, d, nHead, variances, eps);
  const wv = cols(b.attn.cAttnW.data, d, 3 * d, 2 * d + h * dh, dh);
  const wo: M = { rows: dh, cols: d, data: Float64Array.from(b.attn.cProjW.data.subarray(h * dh * d, (h + 1) * dh * d)) };
  return mul(mul(mul(inner, lnMatrix(b.ln1.weight.data, variances[`v-${l}-${h}`], eps)), wv), wo);
}

function expectSameMatrix(program: Program, ref: string, expected: M): void {
  const got = program.matrices.get(ref)!;
  expect([got.rows, got.cols]).toEqual([expected.rows, expected.cols]);
  let maxDiff = 0;
  let scale = 1e-6;
  for (let i = 0; i < expected.data.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(got.data[i] - expected.data[i]));
    scale = Math.max(scale, Math.abs(expected.data[i]));
  }
  expect(maxDiff / scale).toBeLessThan(2e-4);
}

describe('provenance', () => {
  it("recomputes every pair select's and projection's op matrix from the layer, head and paths it cites", async () => {
    const m2 = await tinyModel('bin_majority', { layers: 2, heads: 1, width: 8, std: 0.02, seed: 9 });
    const r = await extract({ model: m2.dir, out: join(dirname(m2.dir), 'p2.rasp'), runs: 1, stage1Steps: 30, stage2Steps: 20, faithfulSteps: 10, mlpSteps: 20, checkSamples: 4, searchSamples: 4, unprunedCheckSamples: 0, primitives: false, mlp: 'split' });
    const { config, weights } = m2;
    const d = config.nEmbd;
    const dh = d / config.nHead;
    const eps = config.lnEps;
    /** Recomputes the program's pair selects and projections; returns how many it checked. */
    const recompute = (program: Program, variances: Record<string, number>): number => {
      let checked = 0;
      for (const st of program.statements) {
        const p = st.provenance!;
        if (st.kind === 'select' && st.q !== undefined && st.op.kind === 'matrix') {
          const b = weights.blocks[p.layer];
          const h = p.head!;
          const side = (path: string, kind: 'q' | 'k', offset: number): M =>
            mul(mul(pathEmbedding(path, weights, d, config.nHead, variances, eps), lnMatrix(b.ln1.weight.data, variances[`${kind}-${p.layer}-${h}`], eps)), cols(b.attn.cAttnW.data, d, 3 * d, offset + h * dh, dh));
          expectSameMatrix(program, st.op.ref, mul(side(p.paths.q!, 'q', 0), transpose(side(p.paths.k!, 'k', d))));
          checked++;
        }
        if (st.kind === 'project' && st.inp !== undefined && st.op.kind === 'matrix') {
          const E = pathEmbedding(p.paths.input!, weights, d, config.nHead, variances, eps);
          const wteT = transpose({ rows: config.vocabSize, cols: d, data: Float64Array.from(weights.wte.data) });
          expectSameMatrix(program, st.op.ref, mul(mul(E, lnMatrix(weights.lnF.weight.data, variances.lm_head, eps)), wteT));
          checked++;
        }
      }
      return checked;
    };
    // 2 layers: 2x2 + 5x5 pair selects and 11 projections
    expect(recompute(await loadProgramFile(r.unprunedOut), r.report.unpruned.lnVariances)).toBe(4 + 25 + 11);
    // the stage-3 pruned program: its pair selects are the kept products, its projections the kept inputs
    expect(r.out).not.toBeNull();
    const pruned = await loadProgramFile(r.out!);
    const kept = pruned.statements.filter((st) => (st.kind === 'select' && st.q !== undefined) || (st.kind === 'project' && st.inp !== undefined)).length;
    expect(recompute(pruned, r.report.program!.lnVariances)).toBe(kept);
    // split: the pruned program's MLP lines are single-input copies, named by the path they read
    expect(r.report.program!.mlp).toBe('split');
    for (const st of pruned.statements) {
      if (st.kind === 'elementwise' && st.fn.name === 'mlp') expect(st.inputs.length).toBe(1);
    }
  }, 300_000);
});

describe('a run that passes the search but misses on the check set', () => {
  it('is rejected and the next candidate (fewest edges first, the faithful program last) is emitted instead', async () => {
    // 2 search sequences per bin and a target of 0.99: both pruned runs pass the search at 1.000 and check at 0.967
    const m = await tinyModel('bin_majority', { std: 0.3, seed: 7 });
    const out = join(dirname(m.dir), 'rejected.rasp');
    const r = await extract({ model: m.dir, out, runs: 2, stage1Steps: 40, stage2Steps: 30, faithfulSteps: 10, mlpSteps: 10, checkSamples: 30, searchSamples: 2, unprunedCheckSamples: 0, primitives: false, target: 0.99, seed: 7 });
    const { rejected, runs, chosen, program } = r.report;
    expect(runs.every((x) => x.match >= 0.99)).toBe(true);
    expect(rejected!.length).toBeGreaterThanOrEqual(2);
    for (const x of rejected!) expect(x.check).toBeLessThan(0.99);
    // the pruned runs were tried first, in their order; none of them is the answer
    expect(rejected!.slice(0, runs.length).map((x) => x.lambda).sort()).toEqual(runs.map((x) => x.lambda).sort());
    expect(chosen!.lambda).toBe(0);
    // what was written is what was checked last (same bins, samples and seed as the extract's check)
    const written = await checkProgram(await loadProgramFile(out), await loadModel(m.dir), { lengths: program!.check.bins.map((x) => x.lengths), samples: 30, seed: 7 + 1000 });
    expect(written.match).toBe(program!.check.match);
  }, 300_000);

  it('with the primitives stage on, is passed over on a quick look at the check set before any primitive is tried', async () => {
    const m = await tinyModel('bin_majority', { std: 0.3, seed: 7 });
    const out = join(dirname(m.dir), 'rejected-prim.rasp');
    const r = await extract({ model: m.dir, out, runs: 2, stage1Steps: 40, stage2Steps: 30, faithfulSteps: 10, mlpSteps: 10, checkSamples: 30, searchSamples: 2, unprunedCheckSamples: 0, target: 0.99, seed: 7 });
    const { rejected, runs, chosen } = r.report;
    expect(rejected!.slice(0, runs.length).map((x) => x.lambda).sort()).toEqual(runs.map((x) => x.lambda).sort());
    for (const x of rejected!) expect(x.check).toBeLessThan(0.99);
    expect(chosen!.lambda).toBe(0);
    // the primitives stage ran once, on the answer
    expect(r.report.primitives).toBeDefined();
  }, 300_000);
});

describe('--mlp auto', () => {
  it('prunes the exact unsplit network on a model wider than splitMaxWidth, without trying split copies', async () => {
    const m = await tinyModel('bin_majority', { width: 8, std: 0.02, seed: 5 });
    const r = await extract({ model: m.dir, out: join(dirname(m.dir), 'auto.rasp'), runs: 1, stage1Steps: 30, stage2Steps: 20, faithfulSteps: 10, mlpSteps: 20, checkSamples: 4, searchSamples: 4, unprunedCheckSamples: 0, primitives: false, splitMaxWidth: 4 });
    expect(r.report.settings.mlp).toBe('auto: unsplit (d_model 8 > 4)');
    expect(r.report.llnA.split).toBeUndefined();
    expect(r.report.secondsByStage.split).toBeUndefined();
    expect(r.report.program!.mlp).toBe('unsplit');
    // one MLP per layer (it reads the sum of its kept input paths), not one copy per path
    expect(r.program!.statements.filter((st) => st.kind === 'elementwise' && st.fn.name === 'mlp').length).toBeLessThanOrEqual(1);
  }, 300_000);
});
