// The long engine flows behind the extension's commands, run inside the engine worker: extraction, checking a
// program against a model, training. Each maps the engine's result to the small report the views show.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkProgram } from '../../../server/src/check/index';
import { extract } from '../../../server/src/decompile/index';
import { loadProgramFile } from '../../../server/src/language/load';
import { initBackend } from '../../../server/src/model/backend';
import { loadModel } from '../../../server/src/model/load';
import { DEFAULT_BINS, getTask, type Task } from '../../../server/src/tasks/index';
import { trainModel } from '../../../server/src/train/index';
import { UserError } from '../../../server/src/util/errors';
import type { CheckJob, CheckReport, ExtractJob, ExtractReport, FrontierPoint, Progress, TrainJob, TrainReport } from './protocol';

type OnProgress = (p: Progress) => void;

/** The paper's length bins clipped to what the task allows; bins with no valid length are dropped. */
export function binsFor(task: Task): [number, number][] {
  const out: [number, number][] = [];
  for (const [lo, hi] of DEFAULT_BINS) {
    const a = Math.max(lo, task.minLength);
    const b = Math.min(hi, task.maxLength);
    let any = false;
    for (let n = a; n <= b && !any; n++) any = task.validLength(n);
    if (any) out.push([a, b]);
  }
  return out;
}

export async function runCheck(job: CheckJob, signal: AbortSignal, progress: OnProgress): Promise<CheckReport> {
  progress({ stage: 'loading', fraction: 0 });
  const program = await loadProgramFile(job.rasp);
  let dir = job.modelDir;
  if (!dir && program.header.model) dir = path.resolve(path.dirname(job.rasp), program.header.model.path);
  if (!dir) throw new UserError('the program names no model; choose a model folder', job.rasp);
  const model = await loadModel(dir, program.header.task ? { task: program.header.task } : {});
  await initBackend(job.backend);
  const task = getTask(program.header.task ?? model.card.task);
  const result = await checkProgram(program, model, { lengths: binsFor(task), samples: job.samplesPerBin, seed: job.seed, signal, onProgress: progress, locate: true });
  return {
    rasp: job.rasp,
    model: dir,
    match: result.match,
    bins: result.bins.map((b) => ({ lengths: b.lengths, value: b.match, samples: b.samples })),
    disagreements: result.disagreements.map((d) => ({
      input: d.input,
      position: d.position,
      ...(d.statement ? { statementName: d.statement } : {}),
      ...(d.line ? { line: d.line } : {}),
      ...(d.reason ? { reason: d.reason } : {}),
    })),
    firstDisagreement: result.firstDisagreement ?? null,
  };
}

export async function runTrain(job: TrainJob, signal: AbortSignal, progress: OnProgress): Promise<TrainReport> {
  await initBackend(job.backend);
  const task = getTask(job.task);
  // The user already agreed to replace an existing model in the host.
  const force = fs.existsSync(job.out);
  const result = await trainModel(
    { task: task.name, layers: job.layers, heads: job.heads, width: job.width, out: job.out, force, seed: job.seed, ...(job.steps > 0 ? { steps: job.steps } : {}) },
    {
      signal,
      onProgress: (p) =>
        progress({
          stage: p.phase === 'train' ? 'training' : p.phase === 'save' ? 'saving' : 'evaluating',
          fraction: p.steps ? p.step / p.steps : 0,
          message: `step ${p.step}/${p.steps}, loss ${p.loss.toFixed(3)}${Number.isNaN(p.accuracy) ? '' : `, accuracy ${(p.accuracy * 100).toFixed(1)}%`}`,
        }),
    },
  );
  return {
    dir: result.out,
    task: result.task,
    steps: result.steps,
    details: {
      'stopped by': result.stoppedBy,
      seconds: Number(result.seconds.toFixed(1)),
      'steps per second': Number(result.stepsPerSecond.toFixed(2)),
      loss: Number(result.loss.toFixed(4)),
      'training accuracy': Number(result.trainAccuracy.toFixed(4)),
      ...Object.fromEntries(result.bins.map((b) => [`accuracy ${b.lengths[0]}-${b.lengths[1]}`, Number(b.accuracy.toFixed(4))])),
    },
  };
}

export async function runExtract(job: ExtractJob, signal: AbortSignal, progress: OnProgress): Promise<ExtractReport> {
  // extract() initialises the default backend itself; the worker's environment makes that default the user's choice.
  process.env.RASP_TF_BACKEND = job.backend;
  await initBackend(job.backend);
  const result = await extract(
    {
      model: job.dir,
      ...(job.task ? { task: job.task } : {}),
      out: job.out,
      force: job.force,
      seed: job.seed,
      target: job.targetMatch,
      ...(job.steps > 0 ? { stage1Steps: job.steps, stage2Steps: job.steps, faithfulSteps: job.steps } : {}),
      ...(job.runs > 0 ? { runs: job.runs } : {}),
      ...(job.samples > 0 ? { checkSamples: job.samples } : {}),
    },
    { signal, onProgress: progress },
  );
  const r = result.report;
  const chosen = r.chosen;
  const points: FrontierPoint[] = [
    ...r.runs.map((x): FrontierPoint => ({ edges: x.edges, match: x.match, kind: 'run', lambda: x.lambda })),
    ...r.frontier.map((x): FrontierPoint => ({ edges: x.edges, match: x.match, kind: 'frontier', lambda: x.lambda })),
    { edges: r.unpruned.edges, match: r.llnA.faithful.match, kind: 'faithful' },
    ...(chosen ? [{ edges: chosen.edges, match: chosen.searchMatch, kind: 'emitted' as const, lambda: chosen.lambda }] : []),
  ];
  const check = r.program?.check ?? r.unpruned.check;
  const details: Record<string, string | number | boolean> = {
    decompilable: r.decompilable,
    ...(r.shortfall !== undefined ? { 'target missed by': Number(r.shortfall.toFixed(4)) } : {}),
    'LLN-A match (data-mean variances)': Number(r.llnA.fixedVariance.match.toFixed(4)),
    'LLN-A match (learned variances)': Number(r.llnA.learnedVariance.match.toFixed(4)),
    'faithful program match (LLN-A, + MLP fine-tune when kept)': Number(r.llnA.faithful.match.toFixed(4)),
    'faithful program lines': r.unpruned.lines,
    'faithful program edges': r.unpruned.edges,
    ...(r.program ? { 'program edges': r.program.edges } : {}),
    ...Object.fromEntries(Object.entries(r.secondsByStage).map(([k, v]) => [`seconds: ${k}`, Number(v.toFixed(1))])),
    ...Object.fromEntries(Object.entries(r.settings).map(([k, v]) => [`setting: ${k}`, v])),
  };
  return {
    task: r.task,
    model: r.model,
    rasp: result.out ?? result.unprunedOut,
    statements: result.lines,
    bins: check ? check.bins.map((b) => ({ lengths: b.lengths, value: b.match, samples: b.samples })) : [],
    match: result.match,
    points,
    pruned: result.out !== null,
    targetMatch: job.targetMatch,
    details,
    seconds: result.seconds,
  };
}
