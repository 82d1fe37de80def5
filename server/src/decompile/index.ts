// `extract`: checkpoint -> re-parameterization (LLN-A, paths) -> pruning (stages 1-3 + lambda search) -> emission
// (.rasp + sidecar for the pruned and the faithful program, JSON report) -> check through the interpreter.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, relative, resolve } from 'node:path';
import { initBackend } from '../model/backend';
import { modelLogits } from '../model/forward';
import { loadModel } from '../model/load';
import type { LoadedModel } from '../model/types';
import { writeProgramFiles } from '../program/print';
import type { Program } from '../program/types';
import { checkProgram, type CheckResult } from '../check';
import { DEFAULT_BINS, formatSequence, getTask, sampleBins, type Task } from '../tasks';
import { CancelledError, UserError } from '../util/errors';
import { Rng } from '../util/rng';
import { writeFileAtomic } from '../model/atomic';
import { buildPathGraph, foldModel, initialState, meanLnVariances, type FoldedModel, type PathGraph } from './reparameterize';
import { meanFieldCopies, splitStateFrom } from './reparameterize/split';
import { MaskedModel, type MaskedState } from './prune/masked';
import type { Batch } from './prune/masked';
import { disposeBatch, evaluate, makeBatch, snapshot, trainFaithful, type EvalSet, type Hooks, type MatchResult, type PruneContext } from './prune/train';
import { CALIBRATE_STEPS, countEdges, paretoFrontier, STAGE3_PRE_STEPS, type RunResult, type Stage3Outcome } from './prune/search';
import { searchOnCores } from './prune/parallel';
import { configEdges, selectorUnits } from './prune/selectors';
import { emitProgram } from './emit/program';
import { interpreterRunner, MAX_STATEMENTS, primitivesStage, sharedJudge, withNeuronProvenance, type SimplifyResult } from './primitives';

export interface ExtractOptions {
  /** Model folder. */
  model: string;
  task?: string;
  /** Output .rasp path (default: <model folder name>.rasp in the working directory). */
  out?: string;
  /** Match accuracy the pruned program must keep (default 0.9). */
  target?: number;
  seed?: number;
  force?: boolean;
  /** Longest sequence (tokens) pruning trains on (default 40); match is always measured on lengths 0-150. */
  pruneLength?: number;
  batch?: number;
  /** Search budget: lambda runs (default 5), steps per stage per run. */
  runs?: number;
  stage1Steps?: number;
  stage2Steps?: number;
  /** 3 (default): pruning stages 1-3 (components, paths, query-key products); 2: stop after paths. */
  stages?: 2 | 3;
  /** Stage-3 step cap (default: the stage-2 cap). */
  stage3Steps?: number;
  /** Steps that learn the LN variances with every edge on (the faithful program), default 100. */
  faithfulSteps?: number;
  /**
   * MLP training steps (default 150): the unsplit MLP's fine-tune when the learned variances miss the target (0
   * disables it), and in split mode the copies' pre-training.
   */
  mlpSteps?: number;
  /**
   * Steps a pruned run that misses the target (or holds it narrowly) re-fits its LN variances and constants on
   * lengths 0-150 with its mask fixed, when pruning trains on shorter sequences (default 60; 0: never). search.ts.
   */
  calibrateSteps?: number;
  /**
   * When the LN variances must be fitted on lengths 0-150 (counting models): 'calibrate' prunes on the short pool
   * with the variances held and calibrates each run on the 0-150 pool; 'prune' prunes on that pool too (about 4x
   * the step cost of 40 tokens); 'auto' (default): calibrate on models wider than WIDE_MODEL, else prune.
   */
  longPool?: LongPool;
  /**
   * split: one MLP copy per input path (readable single-input MLP lines); unsplit: one exact MLP per layer; auto
   * (default): split on models up to `splitMaxWidth` wide unless the split copies fall more than 0.1 short of the target (SPLIT_SLACK), else unsplit.
   */
  mlp?: MlpMode;
  /** auto: the widest model (d_model) that tries split copies (default 64). */
  splitMaxWidth?: number;
  /** Sequences per length bin for the search's match estimate (default 24) and for the final check (default 200). */
  searchSamples?: number;
  checkSamples?: number;
  /** Sequences per bin for checking the faithful program through the interpreter (default 20; 0 skips). */
  unprunedCheckSamples?: number;
  lambda0?: number;
  /** Run the primitives stage (named ops, rounding, MLP primitives, neuron provenance) on the pruned program (default true). */
  primitives?: boolean;
  /** Two lambda runs at once, the second in a worker thread (default true; needs out/pruneWorker.cjs). */
  parallel?: boolean;
  /**
   * Seconds the whole extract aims at (default: the model's budget, `defaultBudget`). Only the primitives stage
   * yields to it: it stops trying candidates when 15% of the budget is left for the final checks, and keeps what
   * it accepted. Pruning and the check always run to the end.
   */
  budget?: number;
}

/** The time budgets of issue 4 by model size: 3 min for 1 layer up to width 64, 10 min for 2+ layers, 15 min wider. */
export function defaultBudget(config: { nLayer: number; nEmbd: number }): number {
  if (config.nEmbd > 64) return 900;
  return config.nLayer <= 1 ? 180 : 600;
}

/** The faithful fit's MLP fine-tune: match after it, its steps, mean loss before/after, whether it was kept. */
export type MlpFineTune = MatchResult & { steps: number; lossBefore: number; lossAfter: number; kept: boolean };

export type MlpMode = 'auto' | 'split' | 'unsplit';

export type LongPool = 'auto' | 'prune' | 'calibrate';

/** d_model above which a model counts as wide: unsplit MLPs (`--mlp auto`), short-pool pruning (`--long-pool auto`). */
export const WIDE_MODEL = 64;

/** --mlp auto prunes the unsplit network when the split copies miss min(target, unsplit match) by more than this. */
const SPLIT_SLACK = 0.1;

/** Split mode: the network with every split copy (every edge on). */
export interface SplitFit {
  /** Whether pruning ran on the split copies; with `--mlp auto`, false when they missed the target (see `reason`). */
  used: boolean;
  reason?: string;
  /** Every copy at the linearisation of the faithful MLP (reparameterize/split.ts). */
  init: MatchResult;
  /** Run when the linearisation misses the target: match after it, steps, mean loss before/after, kept if better. */
  preTraining?: MlpFineTune;
  /** The split network pruning starts from. */
  final: MatchResult;
}

export interface ExtractHooks {
  signal?: AbortSignal;
  onProgress?: (p: { stage: string; fraction: number; message?: string }) => void;
}

export interface ExtractReport {
  model: string;
  sha256: string;
  task: string;
  objective: 'ce' | 'bce';
  settings: Record<string, number | string>;
  seconds: number;
  secondsByStage: Record<string, number>;
  /** CPU seconds (user + system, this process) per stage: steadier than wall time on a shared machine. */
  cpuSecondsByStage: Record<string, number>;
  /**
   * LLN-A faithfulness of the masked model with every edge on: data-mean variances, then learned ones, then (when
   * those miss the target) with the MLP weights fine-tuned as well; `faithfulFit` says it in one line.
   */
  llnA: {
    fixedVariance: MatchResult;
    learnedVariance: MatchResult;
    mlpFineTune?: MlpFineTune;
    /** The faithful (unpruned, exact) program: the fine-tuned network when the fine-tune was kept, else learnedVariance. */
    faithful: MatchResult;
    split?: SplitFit;
    faithfulFit: string;
  };
  runs: {
    lambda: number;
    edges: number;
    match: number;
    kl: number;
    steps: [number, number];
    seconds: number;
    bins: MatchResult['bins'];
    /** Stage 3: its steps, the stage-2 edge count it started from, its units (products + key-only terms), kept ones. */
    stage3?: { steps: number; preSteps: number; edgesAfterStage2: number; units: number; kept: number; outcome: Stage3Outcome; rejectedMatch?: number };
    /** The run's calibration on lengths 0-150 (search.ts), when it ran. */
    calibration?: RunResult['calibration'];
  }[];
  frontier: { lambda: number; edges: number; match: number }[];
  decompilable: boolean;
  /** How far the faithful program misses the target, when it does. */
  shortfall?: number;
  chosen?: { lambda: number; edges: number; searchMatch: number };
  /** Runs that passed the search but missed the target on the check set, tried before the chosen one. */
  rejected?: { lambda: number; edges: number; check: number }[];
  program?: { file: string; lines: number; edges: number; check: CheckResult; mlp: 'split' | 'unsplit'; lnVariances: Record<string, number> };
  unpruned: { file: string; lines: number; edges: number; check?: CheckResult; lnVariances: Record<string, number> };
  /** The primitives stage (docs/primitives.md): counts, accepted steps, MLP explanations with neurons. */
  primitives?: {
    stats: SimplifyResult['stats'];
    steps: SimplifyResult['steps'];
    mlps: SimplifyResult['mlpExplanations'];
    /** Every select's and aggregate's head dims with their checks (the annotations list the top ones). */
    heads?: SimplifyResult['heads'];
  };
  /** Why the chosen program has no primitives stage (a candidate reached after the budget's deadline). */
  primitivesSkipped?: string;
}

export interface ExtractResult {
  out: string | null;
  unprunedOut: string;
  reportOut: string;
  lines: number;
  unprunedLines: number;
  edges: number;
  match: number;
  seconds: number;
  report: ExtractReport;
  program?: Program;
  unprunedProgram: Program;
}

const DEFAULTS = {
  target: 0.9,
  seed: 0,
  pruneLength: 40,
  batch: 16,
  runs: 4,
  stage1Steps: 500,
  stage2Steps: 300,
  stages: 3 as 2 | 3,
  faithfulSteps: 100,
  mlpSteps: 150,
  calibrateSteps: CALIBRATE_STEPS,
  longPool: 'auto' as LongPool,
  // auto: split (readable single-input MLP lines the primitives stage can name) where it is cheap and holds the
  // target; unsplit (exact, one MLP per layer) otherwise. decompile/README.md "split MLPs".
  mlp: 'auto' as MlpMode,
  splitMaxWidth: WIDE_MODEL,
  searchSamples: 24,
  checkSamples: 200,
  unprunedCheckSamples: 20,
  lambda0: 1e-3,
  primitives: true,
  parallel: true,
};

function checkNumber(name: string, v: number, lo: number, hi: number, integer = false): void {
  if (!Number.isFinite(v) || v < lo || v > hi || (integer && !Number.isInteger(v))) {
    throw new UserError(`--${name} must be ${integer ? 'an integer' : 'a number'} in [${lo}, ${hi}], got ${v}`);
  }
}

/** Output paths: the program, its faithful unpruned twin and the report. */
export function outputPaths(out: string): { rasp: string; unpruned: string; report: string } {
  const rasp = resolve(out);
  const stem = rasp.endsWith('.rasp') ? rasp.slice(0, -'.rasp'.length) : rasp;
  return { rasp: stem + '.rasp', unpruned: `${stem}.unpruned.rasp`, report: `${stem}.report.json` };
}

function sidecarOf(rasp: string): string {
  return rasp.replace(/\.rasp$/, '') + '.weights.safetensors';
}

/** Input lengths whose sequences fit in `maxTokens` tokens (at least the task's minimum). */
function pruneLengthRange(task: Task, maxTokens: number): [number, number] {
  const rng = new Rng(1);
  let hi = task.minLength;
  for (let n = task.minLength; n <= task.maxLength; n++) {
    if (!task.validLength(n)) continue;
    if (task.generate(n, rng).length > maxTokens) break;
    hi = n;
  }
  return [task.minLength, hi];
}

export async function extract(options: ExtractOptions, hooks: ExtractHooks = {}): Promise<ExtractResult> {
  const t0 = Date.now();
  const s = { ...DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as typeof DEFAULTS & ExtractOptions;
  checkNumber('target', s.target, 0, 1);
  checkNumber('seed', s.seed, 0, 2 ** 31 - 1, true);
  checkNumber('runs', s.runs, 1, 50, true);
  if (s.stages !== 2 && s.stages !== 3) throw new UserError(`--stages must be 2 or 3, got ${String(s.stages)}`);
  checkNumber('prune-length', s.pruneLength, 2, 10_000, true);
  checkNumber('mlp-steps', s.mlpSteps, 0, 100_000, true);
  checkNumber('calibrate-steps', s.calibrateSteps, 0, 100_000, true);
  if (s.longPool !== 'auto' && s.longPool !== 'prune' && s.longPool !== 'calibrate') throw new UserError(`--long-pool must be "auto", "prune" or "calibrate", got "${String(s.longPool)}"`);
  checkNumber('split-max-width', s.splitMaxWidth, 0, 1_000_000, true);
  if (s.budget !== undefined) checkNumber('budget', s.budget, 1, 1e7);
  if (s.mlp !== 'split' && s.mlp !== 'unsplit' && s.mlp !== 'auto') throw new UserError(`--mlp must be "auto", "split" or "unsplit", got "${String(s.mlp)}"`);
  const signal = hooks.signal;
  const progress = (stage: string, fraction: number, message?: string): void => hooks.onProgress?.({ stage, fraction, ...(message ? { message } : {}) });
  const stageTimes: Record<string, number> = {};
  const stageCpu: Record<string, number> = {};
  let cpuStart = process.cpuUsage();
  let stageStart = Date.now();
  const endStage = (name: string): void => {
    // summed: emission, primitives and the check run once per candidate tried
    stageTimes[name] = (stageTimes[name] ?? 0) + (Date.now() - stageStart) / 1000;
    const cpu = process.cpuUsage(cpuStart);
    stageCpu[name] = (stageCpu[name] ?? 0) + (cpu.user + cpu.system) / 1e6;
    cpuStart = process.cpuUsage();
    stageStart = Date.now();
  };
  const model = await loadModel(options.model, options.task ? { task: options.task } : {});
  const task = getTask(model.card.task);
  const objective = model.card.objective;
  const outPath = options.out ?? `${basename(model.dir)}.rasp`;
  const paths = outputPaths(outPath);
  if (!s.force) {
    for (const p of [paths.rasp, sidecarOf(paths.rasp), paths.unpruned, sidecarOf(paths.unpruned), paths.report]) {
      if (existsSync(p)) throw new UserError('already exists; pass --force to overwrite', p);
    }
  }
  await initBackend();
  const throwIfAborted = (): void => {
    if (signal?.aborted) throw new CancelledError();
  };

  // ---- data: a short-sequence pool for pruning, lengths 0-150 for measuring match ----
  progress('data', 0, 'sampling inputs and running the original model');
  let pruneRange = pruneLengthRange(task, s.pruneLength);
  const evalBins = DEFAULT_BINS.filter(([lo, hi]) => hi >= task.minLength && lo <= task.maxLength).map(([lo, hi]): [number, number] => [Math.max(lo, task.minLength), Math.min(hi, task.maxLength)]);
  const evalSeqs = sampleBins(task, evalBins, s.searchSamples, s.seed + 12);
  const origOf = async (seqs: number[][]): Promise<Float32Array[]> => {
    try {
      return await modelLogits(model, seqs, signal ? { signal } : {});
    } catch (err) {
      if (err instanceof Error && err.name === 'AbortError') throw new CancelledError();
      throw err;
    }
  };
  const evalSets: EvalSet[] = [];
  for (let i = 0; i < evalBins.length; i++) evalSets.push({ lengths: evalBins[i], seqs: evalSeqs[i], orig: await origOf(evalSeqs[i]) });
  throwIfAborted();
  endStage('data');

  // ---- re-parameterization ----
  progress('reparameterize', 0, 'LLN-A variances and paths');
  const graph = buildPathGraph(model.config.nLayer, model.config.nHead);
  const folded = foldModel(model.config, model.weights);
  const budget = s.budget ?? defaultBudget(model.config);
  const perBin = model.config.nEmbd >= 256 ? 3 : 8;
  const varSeqs = evalSets.flatMap((e) => e.seqs.slice(0, perBin));
  const variances = meanLnVariances(model.config, model.weights, varSeqs, new Set([task.special.pad, task.special.eos]));
  const init = initialState(graph, folded, variances);
  const masked = new MaskedModel(graph, folded, init);
  /** Cached batches of sequences with input lengths in `range`, with the original model's targets. */
  const buildPool = async (range: [number, number], batch: number, count: number, seed: number): Promise<Batch[]> => {
    const seqs = sampleBins(task, [range], count, seed)[0];
    const orig = await origOf(seqs);
    const out: Batch[] = [];
    for (let i = 0; i < seqs.length; i += batch) out.push(makeBatch(folded, task, objective, seqs.slice(i, i + batch), orig.slice(i, i + batch)));
    return out;
  };
  let train = await buildPool(pruneRange, s.batch, s.batch * 8, s.seed + 11);
  let long: Batch[] = [];
  // the short pool, kept for pruning when the LN variances had to be fitted on lengths 0-150 (longPool 'calibrate')
  let shortTrain: Batch[] | undefined;
  const pruneHooks: Hooks = { ...(signal ? { signal } : {}), ...(hooks.onProgress ? { onProgress: hooks.onProgress } : {}) };
  const ctx: PruneContext = { graph, folded, task, objective, model: masked, train, evalSets, evalBatch: 8, hooks: pruneHooks };
  let splitModel: MaskedModel | undefined;
  try {
    const allOn = new Float32Array(graph.edges.length).fill(1);
    const fixedVariance = await evaluate(ctx, allOn);
    endStage('reparameterize');
    await trainFaithful(ctx, s.faithfulSteps, 'learn LN variances (faithful program)');
    let learnedVariance = await evaluate(ctx, allOn);
    const fullRange: [number, number] = [task.minLength, evalBins[evalBins.length - 1][1]];
    if (learnedVariance.match < s.target && pruneRange[1] < fullRange[1]) {
      // Short sequences were not enough to fit the LN variances for long inputs (e.g. counting models, whose
      // residual norm drifts with length): fall back to training on the whole 0-150 range, at ~4x the step cost.
      masked.setState(init);
      // auto: pruning steps on 152 tokens cost a wide model minutes per run (bce_D4: 1,535 s of a 900 s budget with
      // 'prune', 423 s with 'calibrate'); a narrow model affords them, and its long bin can need them (bce_tomita4:
      // 'prune' 7 lines at 1.000 in 330 s, 'calibrate' no pruned run at 0.9 and 755 s)
      const calibrate = s.longPool === 'calibrate' || (s.longPool === 'auto' && folded.d > WIDE_MODEL);
      if (calibrate) shortTrain = train;
      else {
        for (const b of train) disposeBatch(b);
        pruneRange = fullRange;
      }
      train = await buildPool(fullRange, Math.max(4, s.batch >> 1), s.batch * 4, s.seed + 13);
      ctx.train = train;
      await trainFaithful(ctx, s.faithfulSteps, 'learn LN variances on lengths 0-150 (faithful program)');
      learnedVariance = await evaluate(ctx, allOn);
    }
    // Still short of the target: one learned variance per consumer cannot follow a residual norm that drifts with
    // length (counting models). Fine-tune the MLP weights too, from the original ones, on the 0-150 pool; the
    // program stays exact because its opaque `mlp` lines carry the fine-tuned weights. Kept only if it helps.
    let mlpFineTune: MlpFineTune | undefined;
    if (learnedVariance.match < s.target && s.mlpSteps > 0) {
      const before = snapshot(masked);
      // LN variances stay as learned: a fresh Adam at lr 0.1 on them would jolt every consumer's scale at once
      const fit = await trainFaithful(ctx, s.mlpSteps, 'fine-tune MLP weights (faithful program)', { mlp: true, ln: false });
      const after = await evaluate(ctx, allOn);
      const kept = after.match > learnedVariance.match || (after.match === learnedVariance.match && after.kl < learnedVariance.kl);
      if (!kept) masked.setState(before);
      mlpFineTune = { ...after, steps: fit.steps, lossBefore: fit.first, lossAfter: fit.last, kept };
    }
    const faithfulMatch: MatchResult = mlpFineTune?.kept ? mlpFineTune : learnedVariance;
    const faithful = snapshot(masked);
    endStage('faithful');
    // ---- split MLPs: one copy per input path, started at the faithful MLP's linearisation and pre-trained with
    // every edge on (reparameterize/split.ts), then pruned; the unsplit faithful program stays the exact twin ----
    let pruneCtx = ctx;
    let pruneStart = faithful;
    let splitFit: SplitFit | undefined;
    // auto: split copies cost one MLP per input path in every pruning step (4-10 copies of a 256 x 1024 MLP on the
    // wide models, most of the step), so only models up to splitMaxWidth try them
    const trySplit = s.mlp === 'split' || (s.mlp === 'auto' && folded.d <= s.splitMaxWidth);
    if (trySplit) {
      const sGraph = buildPathGraph(model.config.nLayer, model.config.nHead, { splitMlps: true });
      const sState = splitStateFrom(graph, faithful, sGraph, folded.d);
      splitModel = new MaskedModel(sGraph, folded, sState);
      for (const u of graph.mlps) {
        // layer by layer: the means of layer l's inputs depend on the copies of earlier layers
        const means = splitModel.pathMeans(train.filter((_, i) => i % 2 === 0));
        const bcMlp = faithful.bc.subarray(u.consumer * folded.d, (u.consumer + 1) * folded.d);
        meanFieldCopies(sGraph, sState, u.layer, faithful.mlps[graph.mlps.indexOf(u)], Math.exp(faithful.logVar[u.consumer]), bcMlp, means, folded);
        splitModel.setState(sState);
      }
      pruneCtx = { ...ctx, graph: sGraph, model: splitModel };
      const sAllOn = new Float32Array(sGraph.edges.length).fill(1);
      const atInit = await evaluate(pruneCtx, sAllOn);
      splitFit = { used: true, init: atInit, final: atInit };
      if (atInit.match < s.target && s.mlpSteps > 0) {
        // the paper's stage 1->2 pre-training: constants at lr 0.002 and the MLP copies at 1e-3, LN frozen. Only
        // when needed: on a short pool it can trade the long bins for a lower loss (bin_majority 1.00 -> 0.99).
        const before = snapshot(splitModel);
        const fit = await trainFaithful(pruneCtx, s.mlpSteps, 'pre-train split MLP copies', { mlp: true, ln: false, bcLr: 2e-3 });
        const after = await evaluate(pruneCtx, sAllOn);
        const kept = after.match > atInit.match || (after.match === atInit.match && after.kl < atInit.kl);
        if (!kept) splitModel.setState(before);
        splitFit.preTraining = { ...after, steps: fit.steps, lossBefore: fit.first, lossAfter: fit.last, kept };
        if (kept) splitFit.final = after;
      }
      pruneStart = snapshot(splitModel);
      if (s.mlp === 'auto' && splitFit.final.match < Math.min(s.target, faithfulMatch.match) - SPLIT_SLACK) {
        // The copies cannot express the MLP (it combines its input paths non-additively, e.g. count: 0.04 -> 0.19
        // after pre-training against 0.97 unsplit): no pruned program of theirs can reach the target, so prune the
        // exact unsplit network instead. A small shortfall is left to pruning, whose ablation constants often
        // replace what the copies get wrong (unique_copy: copies 0.889, pruned run 0.903, program 0.998).
        splitFit.used = false;
        splitFit.reason = `split copies ${splitFit.final.match.toFixed(3)}, more than ${SPLIT_SLACK} below the target ${s.target} or the unsplit network's ${faithfulMatch.match.toFixed(3)}: pruned unsplit`;
        pruneCtx = ctx;
        pruneStart = faithful;
        splitModel.dispose();
        splitModel = undefined;
      }
      endStage('split');
    }
    // a 0-150 pool for calibrating pruned runs (search.ts), when pruning trains on shorter sequences
    if (shortTrain) {
      // the variances were fitted on 0-150: prune on the short pool with them held, calibrate on the 0-150 one
      pruneCtx = { ...pruneCtx, train: shortTrain, long: train };
    } else if (pruneRange[1] < fullRange[1] && s.calibrateSteps > 0) {
      long = await buildPool(fullRange, Math.max(4, s.batch >> 1), s.batch * 4, s.seed + 14);
      pruneCtx = { ...pruneCtx, long };
    }
    const pruneGraph = pruneCtx.graph;
    // Pruning runs even when the faithful program misses the target: replacing a path by its optimal-ablation
    // constant can remove what LLN-A gets wrong at long lengths. "Not decompilable" needs both to miss.
    // two lambda runs at a time, one per core (prune/parallel.ts)
    // every edge of a graph, counted like the runs: with stage 3, every product and key-only term
    const allEdges = (g: PathGraph, on: Float32Array): number => (s.stages === 3 ? configEdges(g, on, new Float32Array(selectorUnits(g, on).kEdge.length).fill(1)) : countEdges(on));
    const pruneAllOn = new Float32Array(pruneGraph.edges.length).fill(1);
    const runs: RunResult[] = await searchOnCores(pruneCtx, pruneStart, {
      fullEdges: allEdges(pruneGraph, pruneAllOn),
      target: s.target,
      lambda0: s.lambda0,
      maxRuns: s.runs,
      stage1Steps: s.stage1Steps,
      stage2Steps: s.stage2Steps,
      stages: s.stages,
      calibrateSteps: s.calibrateSteps,
      frozenLn: shortTrain !== undefined,
      ...(s.stage3Steps !== undefined ? { stage3Steps: s.stage3Steps } : {}),
      minSteps: Math.min(100, s.stage2Steps),
      patience: 100,
      seed: s.seed,
    }, s.parallel);
    // Candidates, best first: the passing runs (fewest edges), then every split copy (the mode asked for), then the
    // faithful program (every edge), each only when it keeps the target on the search samples.
    const candidates: { run: RunResult; graph: PathGraph }[] = runs
      .filter((r) => r.match >= s.target)
      .sort((a, b) => a.edges - b.edges || b.match - a.match)
      .map((run) => ({ run, graph: pruneGraph }));
    // a whole network (every edge on) as a candidate, counted and reported like a run (lambda 0)
    const everyEdge = (g: PathGraph, on: Float32Array, m: MatchResult, state: MaskedState): { run: RunResult; graph: PathGraph } => ({
      run: { lambda: 0, edges: allEdges(g, on), match: m.match, bins: m.bins, kl: m.kl, steps: [0, 0], seconds: 0, mask: on, state, theta1: new Float32Array(0) },
      graph: g,
    });
    if (splitFit?.used && splitFit.final.match >= s.target) candidates.push(everyEdge(pruneGraph, pruneAllOn, splitFit.final, pruneStart));
    if (faithfulMatch.match >= s.target) candidates.push(everyEdge(graph, allOn, faithfulMatch, faithful));
    const decompilable = candidates.length > 0;
    endStage('prune');
    throwIfAborted();

    const modelRef = (rasp: string): { path: string; sha256: string } => ({ path: relative(dirname(rasp), model.dir) || '.', sha256: model.sha256 });
    const example = exampleInput(task, s.seed);
    const checkHooks = (stage: string) => ({ ...(signal ? { signal } : {}), onProgress: (p: { fraction: number; message?: string }) => progress(stage, p.fraction, p.message) });
    const unpruned = emitProgram({ graph, folded, state: faithful, mask: allOn, vocab: [...task.vocab], objective, task: task.name, model: modelRef(paths.unpruned), name: `${task.name} (faithful, unpruned)`, example });
    // the faithful twin's MLP lines get their source neurons too (the primitives stage never sees that program),
    // measured on the search's sequences, a few of each length bin
    const neuronSeqs = evalSets.flatMap((e) => e.seqs.slice(0, 16));
    unpruned.program = withNeuronProvenance(unpruned.program, interpreterRunner(signal), neuronSeqs);
    // ---- emission, primitives (issue 5) and the check through the interpreter, per candidate: the search judged the
    // runs on a few sequences per bin, so a run can pass there and miss on the check set; then the next candidate ----
    let chosen: RunResult | undefined;
    let chosenGraph = pruneGraph;
    let pruned: ReturnType<typeof emitProgram> | undefined;
    let simplified: SimplifyResult | undefined;
    let prunedCheck: CheckResult | undefined;
    const rejected: { lambda: number; edges: number; check: number }[] = [];
    const stageOptions = {
      target: s.target,
      seed: s.seed,
      checkBins: evalBins,
      checkSamples: s.checkSamples,
      checkSeed: s.seed + 1000,
      screenPerBin: Math.max(8, 4 * s.searchSamples),
      // 15% of the budget stays for what follows: the evaluation under way, the final check (count: ~40 s of
      // interpreter runs through a 256-wide MLP), the faithful program's check and neurons (count overran 0.9 by 19 s)
      deadline: t0 + 0.85 * budget * 1000,
      ...(signal ? { signal } : {}),
      ...(hooks.onProgress ? { onProgress: hooks.onProgress } : {}),
    };
    // one judge (the model's decisions on the screening and check sets) for every candidate
    const judge = sharedJudge(model, task, stageOptions);
    for (const [ci, cand] of candidates.entries()) {
      progress('emit', 0, 'building programs');
      const program = emitProgram({ graph: cand.graph, folded, state: cand.run.state, mask: cand.run.mask, ...(cand.run.stage3 ? { selectors: cand.run.stage3 } : {}), vocab: [...task.vocab], objective, task: task.name, model: modelRef(paths.rasp), name: task.name, example });
      endStage('emit');
      const last = ci === candidates.length - 1;
      if (s.primitives && !last && program.program.statements.length <= MAX_STATEMENTS) {
        // A quick look first, on the check set with the model's decisions cached (the judge's): a run that misses
        // the target already as emitted is passed over before the primitives stage spends minutes on it (count: a
        // run at 0.903 in the search checked 0.86, after 390 s of primitives).
        progress('check program', 0, 'emitted program on the check set');
        const early = await (await judge()).confirm(program.program, { atLeast: s.target });
        endStage('check');
        if (early < s.target) {
          rejected.push({ lambda: cand.run.lambda, edges: cand.run.edges, check: early });
          continue;
        }
      }
      let simple: SimplifyResult | undefined;
      // past the deadline a later candidate goes out as emitted (the check still runs)
      if (s.primitives && (ci === 0 || Date.now() < stageOptions.deadline)) {
        simple = await primitivesStage(program.program, model, task, { ...stageOptions, judge });
        program.program = simple.program;
        endStage('primitives');
      }
      // the stage's confirmation ran this very program on this very check set (exactly): what it found is not run again
      const known = simple && !simple.stats.skipped ? (await judge()).knownOnCheckSet(program.program) : undefined;
      const check = await checkProgram(program.program, model, {
        lengths: evalBins,
        samples: s.checkSamples,
        seed: s.seed + 1000,
        ...(known ? { knownMatches: known } : {}),
        ...checkHooks('check program'),
      });
      endStage('check');
      [chosen, chosenGraph, pruned, simplified, prunedCheck] = [cand.run, cand.graph, program, simple, check];
      if (check.match >= s.target || last) break;
      rejected.push({ lambda: cand.run.lambda, edges: cand.run.edges, check: check.match });
    }
    // a candidate emitted without the primitives stage (after the budget) still names its MLP lines' neurons
    if (pruned && !simplified) pruned.program = withNeuronProvenance(pruned.program, interpreterRunner(signal), neuronSeqs);
    const unprunedCheck =
      s.unprunedCheckSamples > 0 ? await checkProgram(unpruned.program, model, { lengths: evalBins, samples: s.unprunedCheckSamples, seed: s.seed + 2000, ...checkHooks('check faithful program') }) : undefined;
    endStage('check');
    throwIfAborted();

    // the learned LN variance of every consumer: with the weights, all a line's op matrix depends on
    const lnVariances = (state: MaskedState, g: PathGraph = graph): Record<string, number> => Object.fromEntries(g.consumers.map((c, i) => [c.id, Math.exp(state.logVar[i])]));
    const report: ExtractReport = {
      model: model.dir,
      sha256: model.sha256,
      task: task.name,
      objective,
      settings: {
        target: s.target,
        budgetSeconds: budget,
        parallel: s.parallel ? 'two lambda runs at once (worker thread)' : 'sequential',
        seed: s.seed,
        pruneLength: s.pruneLength,
        pruneInputLengths: `${pruneRange[0]}-${pruneRange[1]}`,
        batch: s.batch,
        runs: s.runs,
        stage1Steps: s.stage1Steps,
        stage2Steps: s.stage2Steps,
        faithfulSteps: s.faithfulSteps,
        mlpFineTuneSteps: mlpFineTune ? mlpFineTune.steps : 0,
        calibrateSteps: long.length > 0 || shortTrain ? s.calibrateSteps : 0,
        longPool: shortTrain ? 'LN variances fitted on 0-150; pruning on the short pool with them held, runs calibrated on 0-150' : pruneRange[0] === fullRange[0] && pruneRange[1] === fullRange[1] ? 'pruning on 0-150' : 'not needed',
        searchSamplesPerBin: s.searchSamples,
        checkSamplesPerBin: s.checkSamples,
        lambda0: s.lambda0,
        mlp: s.mlp === 'auto' ? `auto: ${splitFit?.used ? 'split' : 'unsplit'}${splitFit ? '' : ` (d_model ${folded.d} > ${s.splitMaxWidth})`}` : s.mlp,
        splitPreSteps: splitFit?.preTraining ? splitFit.preTraining.steps : 0,
        stages: s.stages === 3 ? 'components, paths, query-key products' : 'components, paths',
        stage3Steps: s.stages === 3 ? (s.stage3Steps ?? s.stage2Steps) : 0,
        stage3PreSteps: s.stages === 3 ? STAGE3_PRE_STEPS : 0,
        stage3Ln: 'frozen',
        edgeCount: s.stages === 3 ? 'qk products + key-only terms + v + mlp + lm_head inputs' : 'q + k + v + mlp + lm_head edges',
      },
      seconds: 0,
      secondsByStage: stageTimes,
      cpuSecondsByStage: stageCpu,
      llnA: {
        fixedVariance,
        learnedVariance,
        ...(mlpFineTune ? { mlpFineTune } : {}),
        faithful: faithfulMatch,
        ...(splitFit ? { split: splitFit } : {}),
        faithfulFit: faithfulFitText(fixedVariance, learnedVariance, mlpFineTune, splitFit),
      },
      runs: runs.map((r) => ({
        lambda: r.lambda,
        edges: r.edges,
        match: r.match,
        kl: r.kl,
        steps: r.steps,
        seconds: r.seconds,
        bins: r.bins,
        ...(r.stage3
          ? {
              stage3: {
                steps: r.stage3.steps,
                preSteps: r.stage3.preSteps,
                edgesAfterStage2: r.stage3.edges2,
                units: r.stage3.keep.length,
                kept: r.stage3.keep.reduce((a, k) => a + k, 0),
                outcome: r.stage3.outcome,
                // fallback: the pruned selectors' match (below the target); the run keeps every unit
                ...(r.stage3.rejectedMatch !== undefined ? { rejectedMatch: r.stage3.rejectedMatch } : {}),
              },
            }
          : {}),
        ...(r.calibration ? { calibration: r.calibration } : {}),
      })),
      frontier: paretoFrontier(runs),
      decompilable,
      ...(decompilable ? {} : { shortfall: s.target - Math.max(faithfulMatch.match, splitFit?.final.match ?? 0, ...runs.map((r) => r.match)) }),
      ...(chosen ? { chosen: { lambda: chosen.lambda, edges: chosen.edges, searchMatch: chosen.match } } : {}),
      ...(rejected.length ? { rejected } : {}),
      ...(pruned && prunedCheck ? { program: { file: paths.rasp, lines: pruned.program.statements.length, edges: pruned.edges, check: prunedCheck, mlp: chosenGraph.splitMlps ? 'split' : 'unsplit', lnVariances: lnVariances(chosen!.state, chosenGraph) } } : {}),
      ...(s.primitives && pruned && !simplified ? { primitivesSkipped: 'the candidate came up after the time budget: emitted as pruned' } : {}),
      ...(simplified
        ? { primitives: { stats: simplified.stats, steps: simplified.steps, mlps: simplified.mlpExplanations, ...(simplified.heads ? { heads: simplified.heads } : {}) } }
        : {}),
      unpruned: { file: paths.unpruned, lines: unpruned.program.statements.length, edges: unpruned.edges, ...(unprunedCheck ? { check: unprunedCheck } : {}), lnVariances: lnVariances(faithful) },
    };

    // ---- write (only now, so a cancel leaves nothing half-written) ----
    throwIfAborted();
    progress('write', 0, 'writing files');
    await mkdir(dirname(paths.rasp), { recursive: true });
    await writeProgramFiles(unpruned.program, paths.unpruned, { force: true });
    if (pruned) await writeProgramFiles(pruned.program, paths.rasp, { force: true });
    report.seconds = (Date.now() - t0) / 1000;
    await writeFileAtomic(paths.report, new TextEncoder().encode(JSON.stringify(report, null, 2) + '\n'));
    return {
      out: pruned ? paths.rasp : null,
      unprunedOut: paths.unpruned,
      reportOut: paths.report,
      lines: pruned ? pruned.program.statements.length : unpruned.program.statements.length,
      unprunedLines: unpruned.program.statements.length,
      edges: pruned ? pruned.edges : unpruned.edges,
      match: prunedCheck ? prunedCheck.match : (unprunedCheck?.match ?? faithfulMatch.match),
      seconds: report.seconds,
      report,
      ...(pruned ? { program: pruned.program } : {}),
      unprunedProgram: unpruned.program,
    };
  } finally {
    masked.dispose();
    splitModel?.dispose();
    for (const b of [...train, ...long, ...(shortTrain ?? [])]) disposeBatch(b);
  }
}

/** "LLN-A fixed 0.250 -> learned variances 0.819 -> + MLP fine-tune 0.972" (match on lengths 0-150, per bin). */
function faithfulFitText(fixed: MatchResult, learned: MatchResult, ft: MlpFineTune | undefined, split: SplitFit | undefined): string {
  const m = (r: MatchResult): string => `${r.match.toFixed(3)} (${r.bins.map((b) => b.match.toFixed(2)).join('/')})`;
  const loss = (a: number, b: number): string => `loss ${a.toExponential(2)} -> ${b.toExponential(2)}`;
  let text = `LLN-A fixed variances ${m(fixed)} -> learned variances ${m(learned)}`;
  if (ft) text += ` -> + MLP fine-tune (${ft.steps} steps, ${loss(ft.lossBefore, ft.lossAfter)}) ${m(ft)}${ft.kept ? '' : ', not kept (no better)'}`;
  if (split) {
    text += `; split MLP copies: at the linearisation ${m(split.init)}`;
    const p = split.preTraining;
    if (p) text += ` -> pre-trained (${p.steps} steps, ${loss(p.lossBefore, p.lossAfter)}) ${m(p)}${p.kept ? '' : ', not kept (no better)'}`;
    if (!split.used) text += `; not used: ${split.reason ?? 'missed the target'}`;
  }
  return text;
}

function exampleInput(task: Task, seed: number): string {
  const seq = sampleBins(task, [[task.minLength, Math.min(task.maxLength, Math.max(task.minLength, 8))]], 1, seed + 99)[0][0];
  return formatSequence(task, seq);
}

export type { LoadedModel, PathGraph, FoldedModel };
