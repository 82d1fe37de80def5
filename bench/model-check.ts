// Checks the tfjs forward pass against the float64 reference on every model folder in ../shared/models (or the
// folder given as the first argument): max abs logit error on inputs of <= 20 tokens (tolerance 1e-4) and at
// full length (5e-4), and identical decisions (CE: argmax per position; BCE: logit > 0 per vocabulary entry).
// Inputs: the task's own generator (bos + symbols + sep + answer ...) at short and maximal lengths, plus random
// in-vocabulary ids filling every position. The CLI is checked too: `rasp logits --json` (as a process, from the
// built bundle) on one generated input per model, against the same reference. Not part of `npm test`.
//   node bench/run.mjs bench/model-check.ts [MODELS_DIR]
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { initBackend } from '../server/src/model/backend';
import { modelLogits } from '../server/src/model/forward';
import { loadModel } from '../server/src/model/load';
import { referenceLogits } from '../server/src/model/reference';
import type { LoadedModel } from '../server/src/model/types';
import { getTask } from '../server/src/tasks/index';
import { Rng } from '../server/src/util/rng';

const SHORT_TOL = 1e-4;
const FULL_TOL = 5e-4;

interface Row {
  model: string;
  short: number;
  full: number;
  decisions: string;
  seqs: number;
  cli: number;
  ok: boolean;
}

function inputs(model: LoadedModel, rng: Rng): { short: number[][]; full: number[][] } {
  const task = getTask(model.card.task);
  const P = model.config.nPositions;
  const short: number[][] = [];
  for (let n = task.minLength; short.length < 12 && n <= task.maxLength; n++) {
    if (!task.validLength(n)) continue;
    for (let k = 0; k < 2; k++) {
      const seq = task.generate(n, rng);
      if (seq.length <= 20) short.push(seq);
    }
  }
  // Random ids of random length <= 20 (incl. special tokens anywhere): decisions must agree off-distribution too.
  for (let i = 0; i < 8; i++) {
    short.push(Array.from({ length: rng.int(1, 20) }, () => rng.int(0, model.config.vocabSize - 1)));
  }
  const full: number[][] = [];
  let n = task.maxLength;
  while (n >= task.minLength && !task.validLength(n)) n--;
  for (let i = 0; i < 2; i++) {
    full.push(task.generate(n, rng).slice(0, P));
    full.push(Array.from({ length: P }, () => rng.int(0, model.config.vocabSize - 1)));
  }
  return { short, full };
}

function compare(model: LoadedModel, seqs: number[][], got: Float32Array[]): { err: number; mismatches: number; nearTies: number } {
  const V = model.config.vocabSize;
  const bce = model.card.objective === 'bce';
  let err = 0;
  let mismatches = 0;
  let nearTies = 0;
  seqs.forEach((seq, i) => {
    const ref = referenceLogits(model.config, model.weights, seq);
    for (let j = 0; j < ref.length; j++) err = Math.max(err, Math.abs(ref[j] - got[i][j]));
    for (let t = 0; t < seq.length; t++) {
      const r = ref.subarray(t * V, t * V + V);
      const g = got[i].subarray(t * V, t * V + V);
      if (bce) {
        for (let v = 0; v < V; v++) {
          if (r[v] > 0 !== g[v] > 0) {
            mismatches++;
            if (Math.abs(r[v]) < FULL_TOL) nearTies++;
          }
        }
      } else {
        const ar = argmax(r);
        const ag = argmax(g);
        if (ar !== ag) {
          mismatches++;
          if (Math.abs(r[ar] - r[ag]) < FULL_TOL) nearTies++;
        }
      }
    }
  });
  return { err, mismatches, nearTies };
}

/** Max abs error of `rasp logits --json` (run as a process) against the reference on one sequence. */
function cliError(model: LoadedModel, dir: string, seq: number[]): number {
  const cli = join(process.cwd(), 'bin', 'rasp.cjs');
  const input = seq.map((id) => model.card.vocab[id]).join(' ');
  const r = spawnSync(process.execPath, [cli, 'logits', '--model', dir, '--input', input, '--json'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`rasp logits failed on ${dir}: ${r.stderr}`);
  const rows = (JSON.parse(r.stdout) as { logits: number[][] }).logits;
  const ref = referenceLogits(model.config, model.weights, seq);
  const V = model.config.vocabSize;
  let err = 0;
  rows.forEach((row, t) => row.forEach((x, v) => (err = Math.max(err, Math.abs(x - ref[t * V + v])))));
  return rows.length === seq.length ? err : Infinity;
}

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

async function main(): Promise<number> {
  const dir = resolve(process.argv[2] ?? join(process.cwd(), '..', 'shared', 'models'));
  if (!existsSync(dir)) {
    console.log(`model check skipped: ${dir} does not exist`);
    return 0;
  }
  console.log(`backend: ${await initBackend()}`);
  const folders = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(dir, e.name, 'model.safetensors')))
    .map((e) => e.name)
    .sort();
  const rows: Row[] = [];
  for (const name of folders) {
    const model = await loadModel(join(dir, name));
    const rng = new Rng(20261125);
    const { short, full } = inputs(model, rng);
    const s = compare(model, short, await modelLogits(model, short));
    const f = compare(model, full, await modelLogits(model, full));
    const mism = s.mismatches + f.mismatches;
    const ties = s.nearTies + f.nearTies;
    const cli = cliError(model, join(dir, name), short[short.length - 9]);
    const ok = s.err <= SHORT_TOL && f.err <= FULL_TOL && mism === 0 && cli <= SHORT_TOL;
    rows.push({
      model: name,
      short: s.err,
      full: f.err,
      decisions: mism === 0 ? 'identical' : `${mism} differ (${ties} near ties)`,
      seqs: short.length + full.length,
      cli,
      ok,
    });
    const r = rows[rows.length - 1];
    console.log(
      `${r.model.padEnd(42)} ${r.short.toExponential(2).padStart(9)} ${r.full.toExponential(2).padStart(9)} cli ${r.cli.toExponential(2)}  ${r.decisions.padEnd(12)} ${r.ok ? 'OK' : 'FAIL'}`,
    );
  }
  console.log(`\n| model | max abs err (<= 20 tokens) | max abs err (full length) | rasp logits err | decisions | sequences | result |`);
  console.log(`|---|---|---|---|---|---|---|`);
  for (const r of rows) {
    console.log(
      `| ${r.model} | ${r.short.toExponential(2)} | ${r.full.toExponential(2)} | ${r.cli.toExponential(2)} | ${r.decisions} | ${r.seqs} | ${r.ok ? 'OK' : 'FAIL'} |`,
    );
  }
  return rows.every((r) => r.ok) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(2);
  },
);
