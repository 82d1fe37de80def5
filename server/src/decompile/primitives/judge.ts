// Builds the `evaluate` / `confirm` pair for simplifyProgram from a model and its task: the model's logits on the
// screening and check sets are computed once (check/modelSamples caches them), so judging a candidate program
// costs one interpreter run over the sequences.
import { modelSamples } from '../../check/index';
import { runBatch } from '../../interpreter/index';
import type { LoadedModel } from '../../model/types';
import type { Program } from '../../program/types';
import { DEFAULT_BINS, sequenceMatches, type Task } from '../../tasks/index';
import { CancelledError } from '../../util/errors';
import type { Evaluate } from './types';

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
  signal?: AbortSignal;
}

export interface Judge {
  /** Screening match accuracy. */
  evaluate: Evaluate;
  /** Match accuracy on the check set (different seed). */
  confirm: Evaluate;
  /** The screening sequences (the MLP fits collect their data here). */
  inputs: number[][];
}

/** Interleaves the bins (short, medium, long, short, ...) so an early stop has seen every length range. */
function interleave<T>(bins: T[][]): T[] {
  const out: T[] = [];
  const longest = Math.max(0, ...bins.map((b) => b.length));
  for (let i = 0; i < longest; i++) for (const b of bins) if (i < b.length) out.push(b[i]);
  return out;
}

function matcher(task: Task, seqs: number[][], logits: Float32Array[], signal?: AbortSignal): Evaluate {
  return (program: Program, hint?: { atLeast?: number }) => {
    if (signal?.aborted) throw new CancelledError();
    const n = seqs.length;
    if (n === 0) return 1;
    // Misses allowed before the match provably falls below `atLeast`; then stop and return the upper bound.
    const maxMiss = hint?.atLeast !== undefined ? Math.floor((1 - hint.atLeast) * n + 1e-9) : n;
    const chunk = 16;
    let miss = 0;
    for (let i = 0; i < n; i += chunk) {
      if (signal?.aborted) throw new CancelledError();
      const part = seqs.slice(i, i + chunk);
      runBatch(program, part).forEach((r, k) => {
        if (!sequenceMatches(task, part[k], r.logits, logits[i + k])) miss++;
      });
      if (miss > maxMiss) return (n - miss) / n;
    }
    return (n - miss) / n;
  };
}

export async function modelJudge(model: LoadedModel, task: Task, options: JudgeOptions = {}): Promise<Judge> {
  const bins = options.bins ?? DEFAULT_BINS;
  const seed = options.seed ?? 0;
  const screen = await modelSamples(model, task, options.screenBins ?? bins, options.screenPerBin ?? 100, seed + 7919, options.signal);
  const check = await modelSamples(model, task, bins, options.checkPerBin ?? 200, options.checkSeed ?? seed, options.signal);
  const screenSeqs = interleave(screen.seqs);
  return {
    evaluate: matcher(task, screenSeqs, interleave(screen.logits), options.signal),
    confirm: matcher(task, check.seqs.flat(), check.logits.flat(), options.signal),
    inputs: screenSeqs,
  };
}
