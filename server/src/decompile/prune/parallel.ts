// Both cores for the sparsity search: tfjs-wasm runs single-threaded under Node, so the search runs two lambda runs
// at once, one on the calling thread and one in a worker thread (out/pruneWorker.cjs) that holds its own copy of
// the masked model. Each round's runs depend only on earlier rounds (lambda, warm start), so the result is the
// same whatever the scheduling: deterministic for a given seed.
//
// The worker gets everything as plain data (graph, folded weights, cached batches' sequences and targets, eval
// sets), so it never re-runs the original model and sees exactly the data the calling thread trains on.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { CancelledError } from '../../util/errors';
import type { PathGraph } from '../reparameterize/graph';
import type { FoldedModel } from '../reparameterize/lln';
import type { Batch, MaskedState, Objective } from './masked';
import { runLimit, runOnce, search, type RunResult, type SearchSettings } from './search';
import type { EvalSet, PruneContext } from './train';

/** What a worker needs to rebuild the pruning context. */
export interface WorkerSetup {
  graph: PathGraph;
  folded: FoldedModel;
  task: string;
  objective: Objective;
  train: { seqs: number[][]; target: Float32Array }[];
  long?: { seqs: number[][]; target: Float32Array }[];
  evalSets: EvalSet[];
  evalBatch: number;
  /** MaskedModel constructor options beyond the initial state (e.g. split MLPs), passed through. */
  init: MaskedState;
}

export interface RunJob {
  lambda: number;
  start: MaskedState;
  theta1: Float32Array | null;
  settings: SearchSettings;
  runIndex: number;
}

export type HostToPruneWorker = { type: 'setup'; setup: WorkerSetup } | { type: 'run'; job: RunJob } | { type: 'cancel' };
export type PruneWorkerToHost =
  | { type: 'ready' }
  | { type: 'progress'; stage: string; fraction: number; message?: string }
  | { type: 'result'; result: RunResult }
  | { type: 'error'; message: string; cancelled: boolean };

/** out/pruneWorker.cjs next to the running bundle (CLI, extension worker), or in the package's out/ (tests). */
export function pruneWorkerPath(): string | undefined {
  const candidates = [join(__dirname, 'pruneWorker.cjs')];
  for (let dir = __dirname, i = 0; i < 6; i++, dir = dirname(dir)) candidates.push(join(dir, 'out', 'pruneWorker.cjs'));
  return candidates.find((p) => existsSync(p));
}

/** One long-lived worker running lambda runs for the search. */
export class PruneWorker {
  private readonly worker: Worker;
  private pending: { resolve: (r: RunResult) => void; reject: (e: Error) => void } | undefined;
  private ready: Promise<void>;
  private failed: Error | undefined;

  constructor(file: string, setup: WorkerSetup, private readonly ctx: PruneContext) {
    this.worker = new Worker(file);
    let readyResolve!: () => void;
    let readyReject!: (e: Error) => void;
    this.ready = new Promise((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    this.worker.on('message', (m: PruneWorkerToHost) => {
      if (m.type === 'ready') readyResolve();
      else if (m.type === 'progress') ctx.hooks.onProgress?.({ stage: m.stage, fraction: m.fraction, ...(m.message ? { message: m.message } : {}) });
      else if (m.type === 'result') this.settle((p) => p.resolve(m.result));
      else this.settle((p) => p.reject(m.cancelled ? new CancelledError() : new Error(`pruning worker: ${m.message}`)));
    });
    const onFail = (err: Error): void => {
      this.failed = err;
      readyReject(err);
      this.settle((p) => p.reject(err));
    };
    this.worker.on('error', onFail);
    this.worker.on('exit', (code) => {
      if (code !== 0) onFail(new Error(`pruning worker exited with code ${code}`));
    });
    this.ready.catch(() => undefined);
    this.worker.postMessage({ type: 'setup', setup } satisfies HostToPruneWorker);
  }

  private settle(f: (p: { resolve: (r: RunResult) => void; reject: (e: Error) => void }) => void): void {
    const p = this.pending;
    this.pending = undefined;
    if (p) f(p);
  }

  async run(job: RunJob): Promise<RunResult> {
    await this.ready;
    if (this.failed) throw this.failed;
    const signal = this.ctx.hooks.signal;
    const onAbort = (): void => this.worker.postMessage({ type: 'cancel' } satisfies HostToPruneWorker);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await new Promise<RunResult>((resolve, reject) => {
        this.pending = { resolve, reject };
        this.worker.postMessage({ type: 'run', job } satisfies HostToPruneWorker);
      });
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async dispose(): Promise<void> {
    await this.worker.terminate();
  }
}

const plainBatch = (b: Batch): { seqs: number[][]; target: Float32Array } => ({ seqs: b.seqs, target: b.target.dataSync() as Float32Array });

/** The worker's copy of the data: the calling thread's cached batches as plain arrays. */
export function workerSetup(ctx: PruneContext, init: MaskedState): WorkerSetup {
  return {
    graph: ctx.graph,
    folded: ctx.folded,
    task: ctx.task.name,
    objective: ctx.objective,
    train: ctx.train.map(plainBatch),
    ...(ctx.long ? { long: ctx.long.map(plainBatch) } : {}),
    evalSets: ctx.evalSets,
    evalBatch: ctx.evalBatch,
    init,
  };
}

/**
 * The next round's lambdas (two at once), given the runs so far: widen by x10 steps until the target is bracketed
 * (a passing lambda below a failing one), then split the bracket in thirds in log space.
 */
export function nextLambdas(runs: { lambda: number; match: number }[], target: number, lambda0: number): number[] {
  if (runs.length === 0) return [lambda0, lambda0 * 10];
  const passing = runs.filter((r) => r.match >= target).map((r) => r.lambda);
  const failing = runs.filter((r) => r.match < target).map((r) => r.lambda);
  const pass = passing.length ? Math.max(...passing) : undefined;
  // the smallest failing lambda above the best pass bounds the bracket
  const fail = failing.filter((l) => pass === undefined || l > pass).reduce<number | undefined>((m, l) => (m === undefined || l < m ? l : m), undefined);
  if (pass === undefined) {
    const lo = Math.min(...runs.map((r) => r.lambda));
    return [lo / 10, lo / 100];
  }
  if (fail === undefined) {
    const hi = Math.max(...runs.map((r) => r.lambda));
    return [hi * 10, hi * 100];
  }
  if (fail / pass < 1.5) return [];
  const r = Math.pow(fail / pass, 1 / 3);
  return [pass * r, pass * r * r];
}

/**
 * The search with two runs per round: one here, one in the worker. Same warm-start rule as the sequential search:
 * each run starts from the passing run with the largest smaller lambda among the earlier rounds.
 */
export async function searchParallel(ctx: PruneContext, faithful: MaskedState, s: SearchSettings, worker: PruneWorker): Promise<RunResult[]> {
  const runs: RunResult[] = [];
  for (let limit = runLimit(runs, s); runs.length < limit; limit = runLimit(runs, s)) {
    const lambdas = nextLambdas(runs, s.target, s.lambda0).slice(0, limit - runs.length);
    if (lambdas.length === 0) break;
    const jobs = lambdas.map((lambda, i): RunJob => {
      const warm = runs.filter((r) => r.match >= s.target && r.lambda < lambda).sort((a, b) => b.lambda - a.lambda)[0];
      return { lambda, start: warm ? warm.state : faithful, theta1: warm ? warm.theta1 : null, settings: s, runIndex: runs.length + i };
    });
    const results = await Promise.all(
      jobs.map((job, i) => (i === 0 ? runOnce(ctx, job.lambda, job.start, job.theta1, job.settings, job.runIndex) : worker.run(job))),
    );
    runs.push(...results);
    // an empty program that still matches cannot get sparser
    if (results.some((r) => r.match >= s.target && r.edges <= 1)) break;
  }
  return runs;
}

/**
 * The search on both cores when the worker bundle is there and `parallel` is on (default), else sequential
 * (search.ts). The worker is started once and ends with the search.
 */
export async function searchOnCores(ctx: PruneContext, start: MaskedState, s: SearchSettings, parallel = true): Promise<RunResult[]> {
  const file = parallel && s.maxRuns > 1 ? pruneWorkerPath() : undefined;
  if (!file) return search(ctx, start, s);
  const worker = new PruneWorker(file, workerSetup(ctx, start), ctx);
  try {
    return await searchParallel(ctx, start, s, worker);
  } finally {
    await worker.dispose();
  }
}
