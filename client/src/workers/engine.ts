// Engine worker (bundled as out/engineWorker.cjs): runs one job from workerData and posts progress, then the result
// or an error. Cancellation arrives as a message and aborts the engine through its AbortSignal.
import { parentPort, workerData } from 'node:worker_threads';
import { CancelledError, UserError } from '../../../server/src/util/errors';
import { loadModel } from '../../../server/src/model/load';
import { initBackend } from '../../../server/src/model/backend';
import { modelLogits } from '../../../server/src/model/forward';
import { getTask, taskNames } from '../../../server/src/tasks/index';
import { evaluateTask } from '../../../server/src/tasks/evaluate';
import type { LoadedModel } from '../../../server/src/model/types';
import { binsFor, runCheck, runExtract, runTrain } from './flows';
import type { AccuracyJob, AccuracyResult, HostToWorker, Job, JobResult, ModelInfo, ModelInfoJob, Progress, WorkerToHost } from './protocol';

const port = parentPort;
if (!port) throw new Error('engineWorker must run in a worker thread');
const controller = new AbortController();
port.on('message', (m: HostToWorker) => {
  if (m.type === 'cancel') controller.abort(new CancelledError());
});

function post(msg: WorkerToHost): void {
  port!.postMessage(msg);
}

let lastPost = 0;
function progress(p: Progress): void {
  // The host only needs a few updates a second.
  const now = Date.now();
  if (now - lastPost < 100 && p.fraction < 1) return;
  lastPost = now;
  post({ type: 'progress', progress: p });
}

function parameterCount(model: LoadedModel): number {
  const w = model.weights;
  let n = w.wte.data.length + w.wpe.data.length + w.lnF.weight.data.length + w.lnF.bias.data.length;
  for (const b of w.blocks) {
    for (const t of [b.ln1.weight, b.ln1.bias, b.ln2.weight, b.ln2.bias, b.attn.cAttnW, b.attn.cAttnB, b.attn.cProjW, b.attn.cProjB, b.mlp.fcW, b.mlp.fcB, b.mlp.projW, b.mlp.projB]) {
      n += t.data.length;
    }
  }
  return n;
}

async function modelInfo(job: ModelInfoJob): Promise<ModelInfo> {
  let model: LoadedModel | undefined;
  let taskProblem: string | undefined;
  try {
    model = await loadModel(job.dir, job.task ? { task: job.task } : {});
  } catch (err) {
    // Without a card or a telling folder name the weights still load once a task is named; show what we can.
    if (!(err instanceof UserError) || job.task) throw err;
    taskProblem = err.message;
    model = await loadModel(job.dir, { task: taskNames()[0] });
  }
  const c = model.config;
  let lengthRange: [number, number] | undefined;
  if (!taskProblem) {
    try {
      const t = getTask(model.card.task);
      lengthRange = [t.minLength, t.maxLength];
    } catch {
      lengthRange = undefined;
    }
  }
  return {
    dir: model.dir,
    architecture: c.architecture,
    nLayer: c.nLayer,
    nHead: c.nHead,
    nEmbd: c.nEmbd,
    nPositions: c.nPositions,
    vocabSize: c.vocabSize,
    parameters: parameterCount(model),
    task: taskProblem ? undefined : model.card.task,
    taskSource: taskProblem ? undefined : model.card.source,
    objective: taskProblem ? undefined : model.card.objective,
    vocab: taskProblem ? Array.from({ length: c.vocabSize }, (_, i) => String(i)) : [...model.card.vocab],
    lengthRange,
    reportedAccuracy: model.card.reportedAccuracy,
    sha256: model.sha256,
    taskProblem,
    knownTasks: taskNames(),
  };
}

async function accuracy(job: AccuracyJob, signal: AbortSignal): Promise<AccuracyResult> {
  progress({ stage: 'loading model', fraction: 0 });
  const model = await loadModel(job.dir, job.task ? { task: job.task } : {});
  await initBackend(job.backend);
  const task = getTask(model.card.task);
  const result = await evaluateTask(task, (batch) => modelLogits(model, batch, { signal }), {
    bins: binsFor(task),
    samples: job.samplesPerBin,
    seed: job.seed,
    signal,
    onProgress: (p) => progress({ stage: 'scoring sampled sequences', fraction: p.done / Math.max(1, p.total), message: `${p.done}/${p.total}` }),
  });
  return { task: result.task, bins: result.bins.map((b) => ({ lengths: b.lengths, value: b.accuracy, samples: b.samples })) };
}

async function run(job: Job): Promise<JobResult> {
  switch (job.kind) {
    case 'modelInfo':
      return modelInfo(job);
    case 'accuracy':
      return accuracy(job, controller.signal);
    case 'extract':
      return runExtract(job, controller.signal, progress);
    case 'check':
      return runCheck(job, controller.signal, progress);
    case 'train':
      return runTrain(job, controller.signal, progress);
  }
}

run(workerData as Job).then(
  (value) => post({ type: 'result', value }),
  (err: unknown) => {
    const cancelled = err instanceof CancelledError || controller.signal.aborted;
    const message = err instanceof Error ? (err instanceof UserError || cancelled ? err.message : (err.stack ?? err.message)) : String(err);
    post({ type: 'error', message, user: err instanceof UserError, cancelled });
  },
);
