// The primitives stage alone (`rasp simplify`) on real pruned programs of the checkpoints in ../shared/models
// (skipped when absent). The pruned program of each model is `rasp extract --no-primitives`'s, made once and kept in
// out/bench/primitives/ (10-20 min per width-256 model on a shared 2-core machine), or taken from
// $PRIMITIVES_PROGRAMS/<model>.rasp when that file exists. Prints one row per model: wall and CPU seconds of the
// stage, lines before -> after, named primitives / rounded / opaque ops, screening runs, statement runs reused vs
// computed (incremental evaluation), screening match before -> after and the check-set match of the result.
//   npm run bench -- primitives
//   PRIMITIVES_MODELS=sort,majority npm run bench -- primitives
//   PRIMITIVES_PROGRAMS=/tmp/pruned npm run bench -- primitives
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const modelsDir = resolve(root, '..', 'shared', 'models');
const cli = join(root, 'bin', 'rasp.cjs');
if (!existsSync(modelsDir)) {
  console.log(`primitives bench: ${modelsDir} not found, skipped`);
  process.exit(0);
}
const wanted = (process.env.PRIMITIVES_MODELS ?? '').split(',').filter(Boolean);
const given = process.env.PRIMITIVES_PROGRAMS;
const models = readdirSync(modelsDir)
  .filter((m) => existsSync(join(modelsDir, m, 'config.json')))
  .filter((m) => wanted.length === 0 || wanted.some((w) => m.startsWith(`${w}-`)));
const cache = join(root, 'out', 'bench', 'primitives');
mkdirSync(cache, { recursive: true });
const out = mkdtempSync(join(tmpdir(), 'rasp-primitives-bench-'));
const timeBin = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

/** Runs the CLI; returns stdout, stderr, wall seconds and (with /usr/bin/time) CPU seconds of the child. */
function run(args) {
  const t0 = Date.now();
  const argv = timeBin ? [timeBin, '-f', 'CPU %U %S', process.execPath, cli, ...args] : [process.execPath, cli, ...args];
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 1 << 26 });
  const wall = (Date.now() - t0) / 1000;
  const m = /CPU ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, wall, cpu: m ? Number(m[1]) + Number(m[2]) : NaN };
}

const lastError = (stderr) => stderr.trim().split('\n').filter((l) => !l.startsWith('rasp: ') || l.includes('error')).slice(-1)[0] ?? '';

const rows = [];
for (const name of models) {
  const model = join(modelsDir, name);
  let program = given && existsSync(join(given, `${name}.rasp`)) ? join(given, `${name}.rasp`) : join(cache, `${name}.rasp`);
  let pruneSeconds;
  if (!existsSync(program)) {
    console.error(`primitives bench: pruning ${name} (rasp extract --no-primitives, once; kept in ${cache})`);
    const x = run(['extract', '--model', model, '--out', program, '--no-primitives', '--json', '--force']);
    if (x.status !== 0 || !existsSync(program)) {
      rows.push({ model: name, error: `extract failed: ${lastError(x.stderr)}` });
      continue;
    }
    pruneSeconds = x.wall;
  }
  const report = program.replace(/\.rasp$/, '.report.json');
  if (pruneSeconds === undefined && existsSync(report)) pruneSeconds = JSON.parse(readFileSync(report, 'utf8')).seconds;
  const s = run(['simplify', program, '--model', model, '--out', join(out, `${name}.rasp`), '--json']);
  const doc = s.status === 0 && s.stdout.trim() ? JSON.parse(s.stdout) : undefined;
  if (!doc) {
    rows.push({ model: name, wall: s.wall, cpu: s.cpu, error: lastError(s.stderr) });
    continue;
  }
  rows.push({ model: name, wall: s.wall, cpu: s.cpu, pruneSeconds, doc });
  console.error(`primitives bench: ${name} done in ${s.wall.toFixed(0)} s`);
}

const fmt = (v, d = 3) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : '-');
console.log(`\nrasp simplify (primitives stage) on pruned programs of ../shared/models (outputs in ${out})`);
console.log('model                                 wall s  cpu s  extract s*  lines     prim/round/opaque  runs  stmt reused/computed  screen before->after  check');
for (const r of rows) {
  if (!r.doc) {
    console.log(`${r.model.padEnd(37)} ${fmt(r.wall, 0).padStart(6)} ${fmt(r.cpu, 0).padStart(6)}  ${r.error}`);
    continue;
  }
  const st = r.doc.stats;
  const runs = st.statementRuns ? `${st.statementRuns.reused}/${st.statementRuns.computed}` : '-';
  console.log(
    `${r.model.padEnd(37)} ${fmt(r.wall, 0).padStart(6)} ${fmt(r.cpu, 0).padStart(6)}  ${fmt(r.pruneSeconds, 0).padStart(10)}  ${`${st.linesBefore}->${st.lines}`.padEnd(8)}  ${`${st.primitives}/${st.rounded}/${st.opaque}`.padStart(17)}  ${String(st.evaluations).padStart(4)}  ${runs.padStart(20)}  ${`${fmt(st.baseline)}->${fmt(st.match)}`.padStart(20)}  ${fmt(r.doc.match)}`,
  );
}
console.log('* extract s: the `rasp extract --no-primitives` run that wrote the program (pruning, emission, check), when known');
