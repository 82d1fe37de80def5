// `rasp check`: does a program (extracted or hand-written) make the model's decisions? Runs the program through
// the interpreter and the model through its forward pass on fresh task inputs, per length bin, and reports
// match accuracy (a sequence matches when the decisions agree at every scored position; tasks-and-models.md 1.5).
import type { LoadedModel } from '../model/types';
import { modelLogits } from '../model/forward';
import { runBatch } from '../interpreter';
import type { Program } from '../program/types';
import { DEFAULT_BINS, formatSequence, getTask, mismatchPositions, sampleBins, type Task } from '../tasks';
import { CancelledError, UserError } from '../util/errors';
import { locateDisagreements } from './locate';

export { ATTENTION_TOLERANCE, MLP_TOLERANCE, SELECT_CORRELATION, SELECT_TOLERANCE, locateDisagreements, type LocatedStatement } from './locate';

/** Disagreeing sequences listed (and located) per check. */
const MAX_DISAGREEMENTS = 10;

export interface CheckOptions {
  /** Inclusive length bins; default 0-50, 51-100, 101-150. */
  lengths?: [number, number][];
  /** Sequences per bin (default 200). */
  samples?: number;
  seed?: number;
  /** Task name when neither the program header nor the model card names one. */
  task?: string;
  /**
   * Also locate the first disagreeing statement of each listed disagreement (locate.ts): one more forward pass of
   * the model on those inputs, with attention and MLP outputs recorded. Default false.
   */
  locate?: boolean;
  /**
   * Sequences already known to match (true) from exact interpreter runs of this very program on this very check
   * set (`rasp extract`: the primitives stage's confirmation): counted without running them again. Indexed by bin,
   * then by the sequence's place in it; anything else runs.
   */
  knownMatches?: (bin: number, index: number) => boolean | undefined;
  signal?: AbortSignal;
  onProgress?: (p: { stage: string; fraction: number; message?: string }) => void;
}

export interface CheckBin {
  lengths: [number, number];
  match: number;
  samples: number;
}

export interface Disagreement {
  /** The input sequence, space-separated tokens. */
  input: string;
  /** First scored position where the decisions differ. */
  position: number;
  /** The first disagreeing statement's name, 1-based line and why (with `locate`). */
  statement?: string;
  line?: number;
  reason?: string;
}

/** The first disagreeing sample and the statement located for it (see locate.ts for the definition). */
export interface FirstDisagreement {
  /** The input, space-separated tokens. */
  sequence: string;
  position: number;
  statement: { line: number; name: string };
  reason: string;
}

export interface CheckResult {
  bins: CheckBin[];
  match: number;
  disagreements: Disagreement[];
  /** With `locate`: the first disagreement located, or null when every sampled sequence agrees. */
  firstDisagreement?: FirstDisagreement | null;
}

interface ModelSamples {
  seqs: number[][][];
  logits: Float32Array[][];
}

// The model's logits on a sample set depend only on (weights, task, bins, samples, seed): cache them so repeated
// checks (the search, the extension's re-checks of edited programs) run only the program.
const modelCache = new Map<string, ModelSamples>();
const MAX_CACHE = 16;

export async function modelSamples(model: LoadedModel, task: Task, bins: [number, number][], perBin: number, seed: number, signal?: AbortSignal): Promise<ModelSamples> {
  const key = JSON.stringify([model.sha256, task.name, bins, perBin, seed]);
  const hit = modelCache.get(key);
  if (hit) return hit;
  const seqs = sampleBins(task, bins, perBin, seed);
  const logits: Float32Array[][] = [];
  for (const bin of seqs) {
    if (signal?.aborted) throw new CancelledError();
    logits.push(await modelLogits(model, bin, signal ? { signal } : {}).catch(rethrowAbort));
  }
  const entry = { seqs, logits };
  if (modelCache.size >= MAX_CACHE) modelCache.delete(modelCache.keys().next().value!);
  modelCache.set(key, entry);
  return entry;
}

function rethrowAbort(err: unknown): never {
  if (err instanceof Error && err.name === 'AbortError') throw new CancelledError();
  throw err;
}

/**
 * The task a program is checked on: the model's (its card, folder name or --task decide what data it sees);
 * the program must be written for the same task and vocabulary.
 */
export function taskFor(program: Program, model: LoadedModel, fallback?: string): Task {
  const name = model.card.task ?? program.header.task ?? fallback;
  if (!name) throw new UserError('no task: the model card and the program header name none; pass --task');
  const task = getTask(name);
  if (program.header.task !== undefined && program.header.task !== task.name) {
    throw new UserError(`the program is written for task ${program.header.task} but the model is a ${task.name} model`, program.file);
  }
  const same = task.vocab.length === program.header.vocab.length && task.vocab.every((t, i) => t === program.header.vocab[i]);
  if (!same) {
    throw new UserError(`the program's vocabulary (${program.header.vocab.join(' ')}) is not task ${task.name}'s (${task.vocab.join(' ')})`, program.file);
  }
  if (model.config.vocabSize !== task.vocab.length) {
    throw new UserError(`the model has ${model.config.vocabSize} tokens but task ${task.name} has ${task.vocab.length}`, model.dir);
  }
  return task;
}

export async function checkProgram(program: Program, model: LoadedModel, options: CheckOptions = {}): Promise<CheckResult> {
  const bins = options.lengths ?? DEFAULT_BINS;
  const perBin = options.samples ?? 200;
  const seed = options.seed ?? 0;
  if (!Number.isInteger(perBin) || perBin < 1) throw new UserError(`--samples must be a positive integer, got ${perBin}`);
  const task = taskFor(program, model, options.task);
  options.onProgress?.({ stage: 'model', fraction: 0, message: 'running the model' });
  const { seqs, logits } = await modelSamples(model, task, bins, perBin, seed, options.signal);
  const total = bins.length * perBin;
  let done = 0;
  let agreeAll = 0;
  const out: CheckBin[] = [];
  const disagreements: Disagreement[] = [];
  const disagreeing: number[][] = [];
  const chunk = 16;
  for (let b = 0; b < bins.length; b++) {
    let agree = 0;
    for (let i = 0; i < seqs[b].length; i += chunk) {
      if (options.signal?.aborted) throw new CancelledError();
      const at: number[] = [];
      for (let k = i; k < Math.min(i + chunk, seqs[b].length); k++) {
        if (options.knownMatches?.(b, k) === true) agree++;
        else at.push(k);
      }
      const part = at.map((k) => seqs[b][k]);
      const results = runBatch(program, part, options.signal ? { signal: options.signal } : {});
      results.forEach((r, k) => {
        const seq = part[k];
        const bad = mismatchPositions(task, seq, r.logits, logits[b][at[k]]);
        if (bad.length === 0) agree++;
        else if (disagreements.length < MAX_DISAGREEMENTS) {
          disagreements.push({ input: formatSequence(task, seq), position: bad[0] });
          disagreeing.push(seq);
        }
      });
      done += Math.min(chunk, seqs[b].length - i);
      options.onProgress?.({ stage: 'program', fraction: done / total, message: `${done}/${total} sequences` });
    }
    out.push({ lengths: bins[b], match: seqs[b].length ? agree / seqs[b].length : 1, samples: seqs[b].length });
    agreeAll += agree;
  }
  const result: CheckResult = { bins: out, match: total ? agreeAll / total : 1, disagreements };
  if (options.locate) {
    options.onProgress?.({ stage: 'locate', fraction: 0, message: 'locating the first disagreeing statements' });
    const located = await locateDisagreements(
      program,
      model,
      task,
      disagreements.map((d, k) => ({ seq: disagreeing[k], position: d.position })),
      options.signal,
    ).catch(rethrowAbort);
    located.forEach((l, k) => Object.assign(disagreements[k], { statement: l.statement.name, line: l.statement.line, reason: l.reason }));
    const first = disagreements[0];
    result.firstDisagreement = first ? { sequence: first.input, position: first.position, statement: located[0].statement, reason: located[0].reason } : null;
  }
  return result;
}
