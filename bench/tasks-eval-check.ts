// Reproduces the authors' acc.txt for every model in ../shared/models with `rasp eval` (a separate process per
// model, computing from the weights alone), then compares. Not part of `npm test` (it needs ../shared).
//   node bench/run.mjs bench/tasks-eval-check.ts [--samples 500] [--models DIR] [name-filter...]
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '../..');
const args = process.argv.slice(2);
const opt = (name: string, fallback: string): string => {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const samples = opt('--samples', '500');
const modelsDir = resolve(opt('--models', join(root, '..', 'shared', 'models')));
const filters = args;
if (!existsSync(modelsDir)) {
  console.error(`no models folder at ${modelsDir} (pass --models DIR)`);
  process.exit(1);
}

/** The acc.txt triples, only for the comparison column. */
function reported(dir: string): number[] {
  const file = join(dir, 'acc.txt');
  if (!existsSync(file)) return [];
  return [...readFileSync(file, 'utf8').matchAll(/eval_len(\d+)-(\d+)_acc: ([\d.]+)/g)].map((m) => Number(m[3]));
}

const rows: string[][] = [];
let failures = 0;
const names = readdirSync(modelsDir)
  .filter((n) => existsSync(join(modelsDir, n, 'model.safetensors')))
  .filter((n) => filters.length === 0 || filters.some((f) => n.includes(f)))
  .sort();
for (const name of names) {
  const dir = join(modelsDir, name);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [join(root, 'bin/rasp.cjs'), 'eval', '--model', dir, '--samples', samples, '--json'], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  const seconds = (Date.now() - t0) / 1000;
  if (r.status !== 0) {
    failures++;
    rows.push([name, `rasp eval failed (${r.status}): ${r.stderr.trim().split('\n')[0]}`]);
    continue;
  }
  const ours = (JSON.parse(r.stdout) as { bins: { accuracy: number }[] }).bins.map((b) => b.accuracy);
  const theirs = reported(dir);
  const diff = Math.max(...ours.map((a, i) => Math.abs(a - (theirs[i] ?? NaN))));
  const ok = diff <= 0.03;
  if (!ok) failures++;
  rows.push([name, ours.map((a) => a.toFixed(3)).join(' / '), theirs.map((a) => a.toFixed(4)).join(' / '), diff.toFixed(3), ok ? 'yes' : 'NO', seconds.toFixed(1)]);
  console.error(`${name}: ${ours.join(' ')} (${seconds.toFixed(1)} s)`);
}

const header = ['model', `rasp eval (${samples}/bin) 0-50 / 51-100 / 101-150`, 'acc.txt', 'max |diff|', 'within 0.03', 'seconds'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
const line = (cells: string[]): string => `| ${cells.map((c, i) => (c ?? '').padEnd(widths[i])).join(' | ')} |`;
console.log(line(header));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const r of rows) console.log(line(r));
process.exitCode = failures > 0 ? 1 : 0;
