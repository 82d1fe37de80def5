// Whole `rasp extract` on the checkpoints in ../shared/models (skipped when absent), then `rasp check` of the
// result on 3 x 200 fresh sequences of lengths 0-150 through the interpreter. Prints one row per model: wall and
// CPU seconds against the budget (3 min for 1 layer width <= 64, 10 min for 2 layers width <= 64, 15 min for
// width 256), lines (pruned / faithful), edges, and match.
//   npm run bench -- extract                 every model
//   EXTRACT_MODELS=bin_majority,bce_D2 npm run bench -- extract     those models, in that order
//   EXTRACT_OUT=DIR keeps the outputs there (default: a fresh temporary folder); EXTRACT_ARGS="--stages 2" passes
//   extra options to every `rasp extract`
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const modelsDir = resolve(root, '..', 'shared', 'models');
const cli = join(root, 'bin', 'rasp.cjs');
if (!existsSync(modelsDir)) {
  console.log(`extract bench: ${modelsDir} not found, skipped`);
  process.exit(0);
}
const wanted = (process.env.EXTRACT_MODELS ?? '').split(',').filter(Boolean);
const present = readdirSync(modelsDir).filter((m) => existsSync(join(modelsDir, m, 'config.json')));
const models = wanted.length === 0 ? present : wanted.flatMap((w) => present.filter((m) => m.startsWith(`${w}-`)));
const out = process.env.EXTRACT_OUT ? resolve(process.env.EXTRACT_OUT) : mkdtempSync(join(tmpdir(), 'rasp-extract-bench-'));
mkdirSync(out, { recursive: true });
const extraArgs = (process.env.EXTRACT_ARGS ?? '').split(/\s+/).filter(Boolean);
const timeBin = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

function budget(config) {
  if (config.n_embd >= 256) return 15 * 60;
  return config.n_layer <= 1 ? 3 * 60 : 10 * 60;
}

/** Runs the CLI; returns stdout, stderr, wall seconds and (with /usr/bin/time) CPU seconds of the child. */
function run(args) {
  const t0 = Date.now();
  const argv = timeBin ? [timeBin, '-f', 'CPU %U %S', process.execPath, cli, ...args] : [process.execPath, cli, ...args];
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 1 << 26 });
  const wall = (Date.now() - t0) / 1000;
  const m = /CPU ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, wall, cpu: m ? Number(m[1]) + Number(m[2]) : NaN };
}

const rows = [];
for (const name of models) {
  const config = JSON.parse(readFileSync(join(modelsDir, name, 'config.json'), 'utf8'));
  const file = join(out, `${name}.rasp`);
  const x = run(['extract', '--model', join(modelsDir, name), '--out', file, '--json', '--force', ...extraArgs]);
  let row = { model: name, budget: budget(config), wall: x.wall, cpu: x.cpu };
  const doc = x.stdout.trim() ? JSON.parse(x.stdout) : undefined;
  if (!doc) {
    rows.push({ ...row, error: x.stderr.trim().split('\n').filter((l) => !l.startsWith('rasp: stage')).slice(-2).join(' ') });
    continue;
  }
  row = { ...row, lines: doc.lines, unprunedLines: doc.unprunedLines, edges: doc.edges, extractMatch: doc.match };
  const report = JSON.parse(readFileSync(file.replace(/\.rasp$/, '.report.json'), 'utf8'));
  row.llnA = report.llnA.faithful.match;
  const p = report.primitives?.stats;
  if (p) row.ops = p.skipped ? 'skipped' : `${p.primitives}/${p.rounded}/${p.opaque}`;
  row.stages = Object.entries(report.cpuSecondsByStage ?? {}).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ');
  if (doc.out) {
    const c = run(['check', doc.out, '--model', join(modelsDir, name), '--json', '--samples', '200', '--seed', '7']);
    if (c.status === 0) {
      const j = JSON.parse(c.stdout);
      row.check = j.match;
      row.bins = j.bins.map((b) => b.match.toFixed(3)).join('/');
    } else row.error = c.stderr.trim().split('\n').slice(-1)[0];
  } else row.error = `not decompilable (faithful program ${report.llnA.faithful.match.toFixed(3)})`;
  rows.push(row);
  console.error(`extract bench: ${name} done in ${x.wall.toFixed(0)} s: ${JSON.stringify(row)}`);
}

const fmt = (v, d = 3) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : '-');
console.log(`\nrasp extract on ../shared/models (outputs in ${out})`);
console.log('model                                 wall s  cpu s  budget  lines  faithful  edges  named/rounded/opaque  LLN-A  check(600)  per bin 0-50/51-100/101-150');
for (const r of rows) {
  const within = r.wall <= r.budget ? ' ' : '!';
  console.log(
    `${r.model.padEnd(37)} ${fmt(r.wall, 0).padStart(6)}${within} ${fmt(r.cpu, 0).padStart(5)}  ${String(r.budget).padStart(6)}  ${String(r.lines ?? '-').padStart(5)}  ${String(r.unprunedLines ?? '-').padStart(8)}  ${String(r.edges ?? '-').padStart(5)}  ${String(r.ops ?? '-').padStart(20)}  ${fmt(r.llnA).padStart(5)}  ${fmt(r.check).padStart(10)}  ${r.bins ?? ''}${r.error ? ` ${r.error}` : ''}`,
  );
}
console.log('\nCPU seconds by stage:');
for (const r of rows) if (r.stages) console.log(`  ${r.model}: ${r.stages}`);
