// `rasp simplify` as a process, on a program `rasp extract --no-primitives` wrote for a tiny seeded model: the JSON
// document, the simplified program (loadable, and `rasp check` reproduces the match it reports on the same check
// set), the input and its sidecar untouched, no overwrite without --force, bad options.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { extract } from '../../server/src/decompile';
import { loadProgramFile } from '../../server/src/language/load';
import { tinyModel, type TinyModel } from '../decompile/fixture';

const CLI = 'bin/rasp.cjs';

function rasp(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface SimplifyJson {
  out: string;
  lines: number;
  linesBefore: number;
  match: number;
  seconds: number;
  stats: { lines: number; linesBefore: number; confirmed?: number; evaluations: number; statementRuns?: { reused: number; computed: number } };
}

let model: TinyModel;
let pruned: string;
// small sets keep the test quick: 8 screening and 10 check sequences per bin
const SETS = ['--screen-samples', '8', '--check-samples', '10'];

beforeAll(async () => {
  if (!existsSync('out/cli.cjs')) throw new Error('run `npm run build` first: the CLI bundle is missing');
  model = await tinyModel('bin_majority', { std: 0.02, seed: 5 });
  pruned = join(dirname(model.dir), 'pruned.rasp');
  await extract({ model: model.dir, out: pruned, runs: 1, stage1Steps: 60, stage2Steps: 40, faithfulSteps: 20, checkSamples: 10, primitives: false });
}, 300_000);

describe('rasp simplify (CLI)', () => {
  it('simplifies a pruned program, prints one JSON document and writes a program rasp check agrees with', async () => {
    const before = readFileSync(pruned, 'utf8');
    const input = await loadProgramFile(pruned);
    const out = join(dirname(pruned), 'simple.rasp');
    const r = rasp(['simplify', pruned, '--model', model.dir, '--out', out, '--json', ...SETS]);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as SimplifyJson;
    expect(j.out).toBe(out);
    expect(j.linesBefore).toBe(input.statements.length);
    expect(j.lines).toBe(j.stats.lines);
    expect(j.lines).toBeLessThanOrEqual(j.linesBefore);
    expect(j.seconds).toBeGreaterThan(0);
    expect(j.stats.evaluations).toBeGreaterThan(0);
    expect(j.stats.statementRuns?.computed).toBeGreaterThan(0);
    // progress on stderr, stage by stage
    expect(r.stderr).toContain('primitives');
    const simple = await loadProgramFile(out);
    expect(simple.statements.length).toBe(j.lines);
    // the match is the check set's (rasp extract's: its bins, seed + 1000, 10 per bin here), which rasp check
    // reproduces
    expect(j.match).toBe(j.stats.confirmed);
    const report = JSON.parse(readFileSync(pruned.replace(/\.rasp$/, '.report.json'), 'utf8')) as { program: { check: { bins: { lengths: [number, number] }[] } } };
    const lengths = report.program.check.bins.map((b) => b.lengths.join('-')).join(',');
    const c = rasp(['check', out, '--model', model.dir, '--json', '--samples', '10', '--seed', '1000', '--lengths', lengths]);
    expect(c.status, c.stderr).toBe(0);
    expect((JSON.parse(c.stdout) as { match: number }).match).toBeCloseTo(j.match, 12);
    // the input program is untouched, and a sidecar the output needs is named after the output
    expect(readFileSync(pruned, 'utf8')).toBe(before);
    const weights = /^weights "(.*)"$/m.exec(readFileSync(out, 'utf8'));
    if (weights) expect(weights[1]).toBe('simple.weights.safetensors');
  });

  it('never overwrites without --force, and does with it', () => {
    const out = join(dirname(pruned), 'simple.rasp');
    const mtime = statSync(out).mtimeMs;
    const r = rasp(['simplify', pruned, '--model', model.dir, '--out', out, '--json', ...SETS]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('already exists');
    expect(r.stdout).toBe('');
    expect(statSync(out).mtimeMs).toBe(mtime);
    const f = rasp(['simplify', pruned, '--model', model.dir, '--out', out, '--force', ...SETS]);
    expect(f.status, f.stderr).toBe(0);
    expect(f.stdout).toContain('lines');
    expect(statSync(out).mtimeMs).toBeGreaterThan(mtime);
  });

  it('writes <name>.simple.rasp by default, and rejects bad options and missing files with a clear message', () => {
    const r = rasp(['simplify', pruned, '--model', model.dir, '--json', ...SETS]);
    expect(r.status, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as SimplifyJson).out).toBe(join(dirname(pruned), 'pruned.simple.rasp'));
    expect(existsSync(join(dirname(pruned), 'pruned.simple.rasp'))).toBe(true);
    const bad = rasp(['simplify', pruned, '--model', model.dir, '--out', join(dirname(pruned), 'x.rasp'), '--target', '1.5']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('--target');
    const missing = rasp(['simplify', join(dirname(pruned), 'nope.rasp'), '--model', model.dir, '--out', join(dirname(pruned), 'y.rasp')]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('nope.rasp');
    expect(existsSync(join(dirname(pruned), 'x.rasp'))).toBe(false);
  });
});
