import { beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadModel } from '../../server/src/model/load';

const ROOT = resolve(__dirname, '../..');
const TINY = ['--task', 'bce_D2', '--layers', '1', '--heads', '1', '--width', '8', '--eval-samples', '16', '--final-samples', '8'];

function rasp(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/rasp.cjs'), ...args], { encoding: 'utf8', cwd: ROOT, timeout: 240_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  if (!existsSync(join(ROOT, 'out/cli.cjs'))) {
    const b = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
    expect(b.status).toBe(0);
  }
});

describe('rasp train', () => {
  it('trains a tiny model, writes a loadable checkpoint with its card and eval record, deterministically', async () => {
    const base = await mkdtemp(join(tmpdir(), 'rasp-train-'));
    const runs = [];
    for (const name of ['a', 'b']) {
      const out = join(base, name);
      const r = rasp(['train', ...TINY, '--steps', '12', '--eval-every', '6', '--seed', '3', '--out', out, '--json']);
      expect(r.status, r.stderr).toBe(0);
      runs.push(JSON.parse(r.stdout) as { steps: number; task: string; sha256: string; loss: number; bins: { lengths: number[]; samples: number }[] });
    }
    const [a, b] = runs;
    expect(a.task).toBe('bce_D2');
    expect(a.steps).toBeLessThanOrEqual(12);
    expect(Number.isFinite(a.loss)).toBe(true);
    expect(a.bins.map((x) => x.lengths)).toEqual([[0, 50], [51, 100], [101, 150]]);
    expect(b.sha256).toBe(a.sha256); // same seed, same weights

    const dir = join(base, 'a');
    expect((await readdir(dir)).sort()).toEqual(['acc.txt', 'config.json', 'model.safetensors', 'rasp-model.json', 'training.json']);
    const model = await loadModel(dir);
    expect(model.card.task).toBe('bce_D2');
    expect(model.card.source).toBe('card');
    expect(model.config.architecture).toBe('GPT2BCELMHeadModel');
    expect([model.config.nLayer, model.config.nHead, model.config.nEmbd, model.config.nPositions]).toEqual([1, 1, 8, 152]);
    expect(model.card.reportedAccuracy?.length).toBe(3);
    expect(model.sha256).toBe(a.sha256);
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config.architectures).toEqual(['GPT2BCELMHeadModel']);
    expect(config.vocab_size).toBe(6);
    expect(await readFile(join(dir, 'acc.txt'), 'utf8')).toMatch(/^1l1h8d3lr00drop\s+eval_len0-50_acc: [\d.]+\s+eval_len51-100_acc/);

    // the trained model evaluates through the CLI
    const e = rasp(['eval', '--model', dir, '--samples', '6', '--lengths', '0-20,21-30', '--json']);
    expect(e.status, e.stderr).toBe(0);
    const parsed = JSON.parse(e.stdout) as { bins: { lengths: number[]; accuracy: number; samples: number }[] };
    expect(Object.keys(parsed)).toEqual(['bins']);
    expect(parsed.bins.map((x) => [x.lengths, x.samples])).toEqual([[[0, 20], 6], [[21, 30], 6]]);
    for (const x of parsed.bins) expect(x.accuracy >= 0 && x.accuracy <= 1).toBe(true);

    // never overwrites without --force
    const again = rasp(['train', ...TINY, '--steps', '2', '--out', dir]);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/not empty; use --force/);
    const forced = rasp(['train', ...TINY, '--steps', '2', '--eval-every', '2', '--seed', '4', '--out', dir, '--force', '--json']);
    expect(forced.status, forced.stderr).toBe(0);
    expect((JSON.parse(forced.stdout) as { sha256: string }).sha256).not.toBe(a.sha256);
    expect((await readdir(base)).sort()).toEqual(['a', 'b']); // no leftovers
  });

  it('gives clear errors for bad options', () => {
    const out = join(tmpdir(), `rasp-never-${process.pid}`);
    const unknown = rasp(['train', '--task', 'dyck', '--layers', '1', '--heads', '1', '--width', '8', '--out', out]);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/unknown task "dyck"; known tasks: .*bce_D2/);
    const width = rasp(['train', '--task', 'bce_D2', '--layers', '1', '--heads', '3', '--width', '8', '--out', out]);
    expect(width.status).toBe(1);
    expect(width.stderr).toMatch(/divisible/);
    const steps = rasp(['train', '--task', 'bce_D2', '--layers', '1', '--heads', '1', '--width', '8', '--steps', 'x', '--out', out]);
    expect(steps.status).toBe(1);
    expect(steps.stderr).toMatch(/--steps must be an integer/);
    expect(existsSync(out)).toBe(false);
  });

  for (const sig of ['SIGINT', 'SIGKILL'] as const) {
    it(`leaves no output folder and no partial files when interrupted (${sig})`, async () => {
      const base = await mkdtemp(join(tmpdir(), 'rasp-cancel-'));
      const out = join(base, 'model');
      const child = spawn(process.execPath, [join(ROOT, 'bin/rasp.cjs'), 'train', ...TINY, '--steps', '100000', '--eval-every', '1', '--out', out], {
        cwd: ROOT,
      });
      let stderr = '';
      const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
      await new Promise<void>((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`no progress: ${stderr}`)), 120_000);
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          if (/step [1-9]/.test(stderr)) {
            clearTimeout(timer);
            res();
          }
        });
      });
      child.kill(sig);
      const code = await exited;
      if (sig === 'SIGINT') {
        expect(code).toBe(1);
        expect(stderr).toMatch(/cancelled/);
      }
      expect(existsSync(out)).toBe(false);
      expect(await readdir(base)).toEqual([]);
    });
  }

  it('eval takes the task from the card, the folder name or --task', async () => {
    const base = await mkdtemp(join(tmpdir(), 'rasp-evaltask-'));
    const trained = join(base, 'trained');
    expect(rasp(['train', ...TINY, '--steps', '1', '--out', trained]).status).toBe(0);
    const bare = join(base, 'mymodel');
    const named = join(base, 'bce_D2-@1l1h8d3lr00drop');
    for (const dir of [bare, named]) {
      await mkdir(dir);
      for (const f of ['config.json', 'model.safetensors']) await copyFile(join(trained, f), join(dir, f));
    }
    const noTask = rasp(['eval', '--model', bare, '--samples', '2']);
    expect(noTask.status).toBe(1);
    expect(noTask.stderr).toMatch(/--task/);
    const withTask = rasp(['eval', '--model', bare, '--task', 'bce_D2', '--samples', '2']);
    expect(withTask.status, withTask.stderr).toBe(0);
    expect(withTask.stdout).toMatch(/task\s+bce_D2 \(from --task\)/);
    expect(withTask.stdout).toMatch(/101-150\s+[\d.]+\s+2/);
    const fromName = rasp(['eval', '--model', named, '--samples', '2']);
    expect(fromName.stdout).toMatch(/from the folder name/);
    const wrongVocab = rasp(['eval', '--model', bare, '--task', 'sort', '--samples', '2']);
    expect(wrongVocab.status).toBe(1);
    const swapped = join(base, 'swapped');
    await mkdir(swapped);
    for (const f of ['config.json', 'model.safetensors']) await copyFile(join(trained, f), join(swapped, f));
    const card = JSON.parse(await readFile(join(trained, 'rasp-model.json'), 'utf8')) as { vocab: string[] };
    card.vocab = ['b', 'a', ...card.vocab.slice(2)];
    await writeFile(join(swapped, 'rasp-model.json'), JSON.stringify(card));
    const order = rasp(['eval', '--model', swapped, '--samples', '2']);
    expect(order.status).toBe(1);
    expect(order.stderr).toMatch(/token 0 is "b" but task bce_D2 has "a"/);
    const badBins = rasp(['eval', '--model', trained, '--lengths', '50-10']);
    expect(badBins.status).toBe(1);
    expect(badBins.stderr).toMatch(/bad length range/);
  });
});
