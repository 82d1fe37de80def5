import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadModel } from '../../server/src/model/load';
import { referenceLogits } from '../../server/src/model/reference';
import { writeFixture, type FixtureSpec } from '../fixtures/models';

const ROOT = resolve(__dirname, '../..');
const CE: FixtureSpec = { layers: 2, heads: 1, width: 16, symbols: ['0', '1', '2', '3'], positions: 24, seed: 21 };
const BCE: FixtureSpec = { layers: 1, heads: 2, width: 8, symbols: ['a', 'b'], positions: 12, bce: true, seed: 22 };

function rasp(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/rasp.cjs'), ...args], { encoding: 'utf8', cwd: ROOT, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  // The CLI runs from the bundle; build it when a fresh checkout has none.
  if (!existsSync(join(ROOT, 'out/cli.cjs'))) {
    const b = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
    expect(b.status).toBe(0);
  }
});

describe('rasp logits', () => {
  for (const spec of [CE, BCE]) {
    it(`prints one row per position in vocabulary order (${spec.bce ? 'BCE' : 'CE'}), matching the float64 reference`, async () => {
      const dir = await writeFixture(spec);
      const model = await loadModel(dir);
      const tokens = spec.bce ? ['<bos>', 'a', 'b', 'b', 'a', '<eos>'] : ['<bos>', '3', '1', '2', '<sep>', '1'];
      const r = rasp(['logits', '--model', dir, '--input', tokens.join(' '), '--json']);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const out = JSON.parse(r.stdout) as { logits: number[][] };
      expect(Object.keys(out)).toEqual(['logits']);
      expect(out.logits).toHaveLength(tokens.length);
      const ids = tokens.map((t) => model.card.vocab.indexOf(t));
      const ref = referenceLogits(model.config, model.weights, ids);
      const V = model.config.vocabSize;
      out.logits.forEach((row, t) => {
        expect(row).toHaveLength(V);
        row.forEach((x, v) => expect(Math.abs(x - ref[t * V + v])).toBeLessThan(1e-4));
      });
      // --offset shifts the position ids
      const off = JSON.parse(rasp(['logits', '--model', dir, '--input', tokens.join(' '), '--offset', '3', '--json']).stdout) as {
        logits: number[][];
      };
      const refOff = referenceLogits(model.config, model.weights, ids, 3);
      expect(Math.abs(off.logits[2][0] - refOff[2 * V])).toBeLessThan(1e-4);
      // the reference implementation is available from the CLI too
      const viaRef = JSON.parse(rasp(['logits', '--model', dir, '--input', tokens.join(' '), '--reference', '--json']).stdout) as {
        logits: number[][];
      };
      expect(viaRef.logits[1][1]).toBeCloseTo(ref[V + 1], 10);
    });
  }

  it('prints a readable table without --json', async () => {
    const dir = await writeFixture(BCE);
    const r = rasp(['logits', '--model', dir, '--input', '<bos> a b']);
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toContain('task fixture_bce');
    expect(lines).toHaveLength(4);
    expect(lines[2]).toMatch(/^\s+1\s+a\s+-> \{/);
  });

  it('exits 1 naming the problem: unknown token, too long input, bad model folder', async () => {
    const dir = await writeFixture(CE);
    const unknown = rasp(['logits', '--model', dir, '--input', '<bos> 1 7', '--json']);
    expect(unknown.status).toBe(1);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toMatch(/unknown token "7" at input position 2; the vocabulary of task fixture is: 0 1 2 3 <bos> <sep> <eos> <pad>/);
    const long = rasp(['logits', '--model', dir, '--input', Array(25).fill('1').join(' '), '--json']);
    expect(long.status).toBe(1);
    expect(long.stderr).toMatch(/the input has 25 tokens but the model has only 24 positions/);
    const offset = rasp(['logits', '--model', dir, '--input', '1 1', '--offset', '23']);
    expect(offset.status).toBe(1);
    expect(offset.stderr).toMatch(/2 tokens from position 23 but the model has only 24 positions/);
    const empty = rasp(['logits', '--model', dir, '--input', '  ']);
    expect(empty.status).toBe(1);
    expect(empty.stderr).toMatch(/--input is empty/);
    await rm(join(dir, 'config.json'));
    const broken = rasp(['logits', '--model', dir, '--input', '1']);
    expect(broken.status).toBe(1);
    expect(broken.stderr).toMatch(/no config\.json in .*fixture/);
  });

  const real = resolve(ROOT, '../shared/models/bin_majority-@1l1h16d3lr01drop');
  it.skipIf(!existsSync(real))('reproduces the documented logits of a real checkpoint (optional: needs ../shared)', () => {
    const r = rasp(['logits', '--model', real, '--input', '<bos> 0 <sep>', '--json']);
    expect(r.status).toBe(0);
    const last = (JSON.parse(r.stdout) as { logits: number[][] }).logits[2];
    [5.89, -0.74, -5.08, -3.93, -5.07, -4.81].forEach((x, i) => expect(last[i]).toBeCloseTo(x, 2));
  });
});
