// The two-core sparsity search: the lambda schedule, and a lambda run in the pruning worker (out/pruneWorker.cjs,
// its own tfjs instance and masked model rebuilt from plain data) equals the same run on the calling thread.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { nextLambdas } from '../../server/src/decompile/prune/parallel';
import { runLimit, type SearchSettings } from '../../server/src/decompile/prune/search';
import { tinyModel } from './fixture';

describe('nextLambdas (two runs per round)', () => {
  const T = 0.9;
  it('starts at lambda0 and ten times it', () => {
    expect(nextLambdas([], T, 1e-3)).toEqual([1e-3, 1e-2]);
  });
  it('widens upwards while everything passes and downwards while everything fails', () => {
    expect(nextLambdas([{ lambda: 1e-3, match: 1 }, { lambda: 1e-2, match: 0.95 }], T, 1e-3)).toEqual([1e-1, 1]);
    const down = nextLambdas([{ lambda: 1e-3, match: 0.5 }, { lambda: 1e-2, match: 0.4 }], T, 1e-3);
    expect(down[0]).toBeCloseTo(1e-4, 12);
    expect(down[1]).toBeCloseTo(1e-5, 12);
  });
  it('splits a bracket in thirds (log scale) between the largest pass and the smallest fail above it', () => {
    const [a, b] = nextLambdas([{ lambda: 1e-3, match: 0.95 }, { lambda: 1e-2, match: 0.5 }, { lambda: 1e-4, match: 0.99 }], T, 1e-3);
    expect(Math.log10(a)).toBeCloseTo(-3 + 1 / 3, 9);
    expect(Math.log10(b)).toBeCloseTo(-3 + 2 / 3, 9);
  });
  it('stops once the bracket is narrower than a factor 1.5', () => {
    expect(nextLambdas([{ lambda: 1e-3, match: 0.95 }, { lambda: 1.2e-3, match: 0.5 }], T, 1e-3)).toEqual([]);
  });
});

describe('runLimit (one more round while nothing passing is pruned)', () => {
  const s = { target: 0.9, maxRuns: 4, fullEdges: 53 } as SearchSettings;
  // count's first four runs (unsplit, stage 3): only the whole network passed
  const count = [
    { lambda: 1e-3, edges: 5, match: 0.194 },
    { lambda: 1e-2, edges: 2, match: 0 },
    { lambda: 1e-4, edges: 10, match: 0.597 },
    { lambda: 1e-5, edges: 53, match: 1 },
  ];
  it('grants extraRuns (default 4) when the target is bracketed and every passing run keeps >= 90% of the edges', () => {
    expect(runLimit(count, s)).toBe(8);
    expect(runLimit(count, { ...s, extraRuns: 2 })).toBe(6);
    // and the next round goes into that bracket
    expect(nextLambdas(count, 0.9, 1e-3).every((l) => l > 1e-5 && l < 1e-4)).toBe(true);
  });
  it('stays at maxRuns once a passing run has pruned, when nothing is bracketed, or without fullEdges', () => {
    expect(runLimit([...count, { lambda: 3e-5, edges: 20, match: 0.93 }], s)).toBe(4);
    expect(runLimit(count.filter((r) => r.match >= 0.9), s)).toBe(4);
    expect(runLimit(count, { ...s, fullEdges: undefined })).toBe(4);
  });
});

describe('rasp extract on both cores (CLI, worker thread)', () => {
  it('runs two lambda runs per round in the pruning worker and is deterministic for a seed', async () => {
    if (!existsSync('out/pruneWorker.cjs')) throw new Error('run `npm run build` first: out/pruneWorker.cjs is missing');
    const model = await tinyModel('bin_majority', { std: 0.02, seed: 5 });
    const args = (out: string, extra: string[] = []): string[] =>
      ['bin/rasp.cjs', 'extract', '--model', model.dir, '--out', out, '--json', '--runs', '2', '--steps', '40,30,10,20', '--check-samples', '10', '--no-primitives', ...extra];
    const outA = join(dirname(model.dir), 'a.rasp');
    const outB = join(dirname(model.dir), 'b.rasp');
    for (const out of [outA, outB]) {
      const r = spawnSync(process.execPath, args(out), { encoding: 'utf8', timeout: 300_000 });
      expect(r.status, r.stderr).toBe(0);
    }
    const report = JSON.parse(readFileSync(join(dirname(outA), 'a.report.json'), 'utf8'));
    expect(report.settings.parallel).toMatch(/worker/);
    // one round: lambda0 here, ten times lambda0 in the worker
    expect(report.runs.map((r: { lambda: number }) => r.lambda)).toEqual([1e-3, 1e-2]);
    const strip = (f: string): string => readFileSync(f, 'utf8').replace(/^(program|model|weights) .*$/gm, '');
    expect(strip(outB)).toBe(strip(outA));
    const seq = spawnSync(process.execPath, args(join(dirname(model.dir), 'c.rasp'), ['--no-parallel']), { encoding: 'utf8', timeout: 300_000 });
    expect(seq.status, seq.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(dirname(outA), 'c.report.json'), 'utf8')).settings.parallel).toBe('sequential');
  }, 600_000);
});
