// Builds the `evaluate` / `confirm` pair for simplifyProgram from a model and its task: the model's logits on the
// screening and check sets are computed once (check/modelSamples caches them), so judging a candidate program
// costs one interpreter run over the sequences, and only of what the candidate changed (incremental.ts).
import { modelSamples } from '../../check/index';
import type { MlpKernel } from '../../interpreter/elementwise';
import type { Execution } from '../../interpreter/index';
import type { LoadedModel } from '../../model/types';
import type { Program } from '../../program/types';
import { DEFAULT_BINS, sampleBins, sequenceMatches, type Task } from '../../tasks/index';
import { CancelledError } from '../../util/errors';
import { IncrementalRuns, SignatureTable, type IncrementalStats } from './incremental';
import type { Dense } from './linalg';
import { interpreterRunner } from './runner';
import type { Evaluate, EvaluateHint, ProgramRunner } from './types';

export interface JudgeOptions {
  /** Inclusive length bins (default 0-50, 51-100, 101-150: the check set's). */
  bins?: [number, number][];
  /** Screening sequences per bin (default 100: a few hundred in all). */
  screenPerBin?: number;
  /** Check-set sequences per bin for `confirm` (default 200, as `rasp check`). */
  checkPerBin?: number;
  /** Screening bins (default: `bins`); e.g. shorter lengths make screening cheaper. */
  screenBins?: [number, number][];
  seed?: number;
  /** Seed of the check set (default `seed`: `rasp check`'s default set when seed is 0). */
  checkSeed?: number;
  /** Opaque MLP kernel of the screening runs (default: the exact interpreter's); `confirm` always runs exactly. */
  screenMlpKernel?: MlpKernel;
  signal?: AbortSignal;
}

export interface Judge {
  /** Screening match accuracy. */
  evaluate: Evaluate;
  /** Match accuracy on the check set (different seed). */
  confirm: Evaluate;
  /** The screening sequences (the MLP fits collect their data here). */
  inputs: number[][];
  /** How many sequences the check set (`confirm`) has. */
  checkSamples: number;
  /**
   * Check-set sequences (by bin, then place in the bin, as `rasp check` samples them) that `confirm` found to match
   * for this very program, for checkProgram's `knownMatches`.
   */
  knownOnCheckSet: (program: Program) => (bin: number, index: number) => boolean | undefined;
  /** Variable values on (a prefix of) the screening sequences, sharing the screening runs' cache. */
  runner: ProgramRunner;
  /** Statement runs reused / computed and predictions known, screening and check set. */
  stats: () => { screen: IncrementalStats; check: IncrementalStats };
}

/** Interleaves the bins (short, medium, long, short, ...) so an early stop has seen every length range. */
function interleave<T>(bins: T[][]): T[] {
  const out: T[] = [];
  const longest = Math.max(0, ...bins.map((b) => b.length));
  for (let i = 0; i < longest; i++) for (const b of bins) if (i < b.length) out.push(b[i]);
  return out;
}

function matcher(task: Task, runs: IncrementalRuns, logits: Float32Array[], signal?: AbortSignal): Evaluate {
  return (program: Program, hint?: EvaluateHint) => {
    if (signal?.aborted) throw new CancelledError();
    const seqs = runs.seqs;
    const n = seqs.length;
    if (n === 0) return 1;
    // Misses allowed before the match provably falls below `atLeast`: one more and the candidate is out, so stop
    // there (checked after every `checkEvery` sequences) and return the upper bound (n - misses) / n. The sequences
    // alternate short, medium and long (interleave), so a candidate that fails everywhere is out after a few runs.
    const maxMiss = hint?.atLeast !== undefined ? Math.floor((1 - hint.atLeast) * n + 1e-9) : n;
    const every = Math.max(1, hint?.checkEvery ?? 1);
    const ev = runs.begin(program);
    let miss = 0;
    for (let k = 0; k < n; k++) {
      if (signal?.aborted) throw new CancelledError();
      const r = runs.run(ev, k);
      let ok = r.matched;
      if (ok === undefined) {
        ok = sequenceMatches(task, seqs[k], (r.ex as Execution).result().logits, logits[k]);
        runs.remember(ev, k, ok);
      }
      if (!ok) miss++;
      if (miss > maxMiss && ((k + 1) % every === 0 || k === n - 1)) return (n - miss) / n;
    }
    return (n - miss) / n;
  };
}

/**
 * Variable values for the MLP fits from the screening runs' cache when the inputs are the screening sequences
 * themselves (a prefix of them, as primitivesStage passes), from fresh interpreter runs otherwise.
 */
function cachedRunner(runs: IncrementalRuns, signal?: AbortSignal): ProgramRunner {
  const fallback = interpreterRunner(signal);
  return {
    values(program: Program, inputs: readonly (readonly number[])[], names: readonly string[]): Map<string, Dense[]> {
      if (inputs.length > runs.seqs.length || inputs.some((x, i) => x !== runs.seqs[i])) return fallback.values(program, inputs, names);
      const wanted = new Set(names);
      let last = -1;
      program.statements.forEach((s, i) => {
        if (wanted.has(s.name)) last = i;
      });
      const ev = runs.begin(program);
      const out = new Map<string, Dense[]>(names.map((n) => [n, []]));
      inputs.forEach((_, i) => {
        const ex = runs.run(ev, i, last).ex as Execution;
        for (const n of names) {
          const v = ex.value(n);
          if (!v) throw new Error(`the interpreter computed no value for ${n}`);
          out.get(n)?.push({ rows: v.n, cols: v.basis.size, data: v.data });
        }
      });
      return out;
    },
  };
}

/** The screening sequences modelJudge uses (its `inputs`), without running the model. */
export function screeningInputs(task: Task, options: Pick<JudgeOptions, 'bins' | 'screenBins' | 'screenPerBin' | 'seed'> = {}): number[][] {
  return interleave(sampleBins(task, options.screenBins ?? options.bins ?? DEFAULT_BINS, options.screenPerBin ?? 100, (options.seed ?? 0) + 7919));
}

export async function modelJudge(model: LoadedModel, task: Task, options: JudgeOptions = {}): Promise<Judge> {
  const bins = options.bins ?? DEFAULT_BINS;
  const seed = options.seed ?? 0;
  const screen = await modelSamples(model, task, options.screenBins ?? bins, options.screenPerBin ?? 100, seed + 7919, options.signal);
  const check = await modelSamples(model, task, bins, options.checkPerBin ?? 200, options.checkSeed ?? seed, options.signal);
  const screenSeqs = interleave(screen.seqs);
  const table = new SignatureTable();
  const screenRuns = new IncrementalRuns(screenSeqs, table, 3, options.signal, options.screenMlpKernel);
  // The check set only sees phase winners (and rollbacks): one version is enough.
  const checkRuns = new IncrementalRuns(check.seqs.flat(), table, 1, options.signal);
  // where each bin starts in the flattened check set
  const offsets = check.seqs.map((_, b) => check.seqs.slice(0, b).reduce((n, s) => n + s.length, 0));
  return {
    evaluate: matcher(task, screenRuns, interleave(screen.logits), options.signal),
    confirm: matcher(task, checkRuns, check.logits.flat(), options.signal),
    inputs: screenSeqs,
    checkSamples: checkRuns.seqs.length,
    knownOnCheckSet: (program) => {
      const known = checkRuns.knownMatches(program);
      return (bin, index) => (bin < offsets.length && index < check.seqs[bin].length ? known[offsets[bin] + index] : undefined);
    },
    runner: cachedRunner(screenRuns, options.signal),
    stats: () => ({ screen: { ...screenRuns.stats }, check: { ...checkRuns.stats } }),
  };
}
