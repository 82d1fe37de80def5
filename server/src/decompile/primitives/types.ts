// Public types of the primitives stage (docs/primitives.md).
import type { NeuronRef, Program } from '../../program/types';
import type { Dense } from './linalg';
import type { HeadDimExplanation } from './dims';
import type { NeuronDetail } from './neurons';

export type { HeadDimExplanation } from './dims';

/**
 * Match accuracy (0..1) of a program against the model's cached decisions on a screening set. With `atLeast`, the
 * caller only needs to know whether the match reaches it: an evaluator may stop early once it cannot and return
 * any value below `atLeast` (e.g. an upper bound of the match).
 */
export type Evaluate = (program: Program, hint?: EvaluateHint) => Promise<number> | number;

export interface EvaluateHint {
  atLeast?: number;
  /**
   * Check for the early stop only after every `checkEvery` sequences (default 1: as soon as it is certain). The MLP
   * stage ranks rejected candidates by the bound too, so it asks for the bound it has always used (16).
   */
  checkEvery?: number;
}

/** Runs a program and returns the named variables' values: per input sequence, an n x basis-size matrix. */
export interface ProgramRunner {
  values(program: Program, inputs: readonly (readonly number[])[], names: readonly string[]): Map<string, Dense[]>;
}

export interface SimplifyOptions {
  /** Task sequences (token ids) the MLP fits and the neuron attribution collect their data on. */
  inputs: readonly (readonly number[])[];
  /** How variable values are obtained (default: the interpreter). */
  runner?: ProgramRunner;
  /** Match accuracy on the full check set; called only on accepted programs (phase winners). */
  confirm?: Evaluate;
  /** Absolute floor: the final program's match stays >= target (default 0.9). */
  target?: number;
  /**
   * Sequences behind `evaluate` and `confirm`. With them the absolute floor keeps two binomial standard errors of
   * a match at `target` above it (screening 288 sequences: +0.035; check set 600: +0.025), so that a program
   * accepted on these samples still holds the target on fresh ones; never above the input program's own match.
   */
  screenSamples?: number;
  confirmSamples?: number;
  /**
   * Date.now() after which no further candidate is tried: the phases keep what they accepted, the final
   * confirmation still runs (`rasp extract --budget`).
   */
  deadline?: number;
  /** Relative thresholds of the paper (d-rasp.md 3.7): accept when match >= (t + margin) x baseline. */
  greedyThreshold?: number; // 0.95
  roundThreshold?: number; // 0.9
  margin?: number; // 0.01
  /** Absolute match an MLP replacement must keep (d-rasp.md 5.2: 0.9). */
  mlpThreshold?: number;
  /** Only primitives whose fit leaves less than this fraction of variance unexplained are tried (0.6). */
  maxFvu?: number;
  /** At most this many MLP candidates (best FVU first) are run through evaluate per line (default 6). */
  mlpEvaluations?: number;
  /** Rows (positions) collected per MLP fit (default 8000). */
  maxRows?: number;
  /** Largest Cartesian product tried by `combine` (default 400 features). */
  maxProduct?: number;
  /** Rows of the input->effect table of an MLP left opaque (default 12). */
  tableRows?: number;
  /** Neuron attribution: share of output variance to cover and list length. */
  neuronCoverage?: number;
  maxNeurons?: number;
  /**
   * Programs with more statements than this are returned as they are (after dead-code elimination): greedy search
   * runs the whole program per candidate, which on an unpruned 2-layer program (~60 lines, dense position-basis
   * selects) costs minutes per unit. Default 40; the reason is in `stats.skipped`.
   */
  maxStatements?: number;
  /** Stages to run (all on by default). */
  stages?: { mlps?: boolean; attention?: boolean; round?: boolean; merge?: boolean };
  signal?: AbortSignal;
  onProgress?: (p: { stage: string; fraction: number; message?: string }) => void;
}

export interface CandidateScore {
  label: string;
  fvu: number;
  /** Screening match accuracy, when the candidate was run. */
  match?: number;
}

/** One row of an opaque MLP's input->effect table (d-rasp.md 5.3, simplified). */
export interface EffectRow {
  /** The input's non-negligible entries, "label=value" (value rounded to 2 decimals), per input variable. */
  input: string[];
  /** For each reader: its name and the entries the MLP output moves most (label and signed amount). */
  effects: { reader: string; top: { label: string; value: number }[] }[];
}

export interface MlpExplanation {
  /** The line's variable name in the final program (its name before, when it was replaced). */
  line: string;
  /** The name the line had in the input program. */
  originalName: string;
  layer?: number;
  /** The accepted primitive (label), or undefined when the MLP stays opaque. */
  primitive?: string;
  /** Screening match with the accepted primitive, or the best one tried. */
  match?: number;
  candidates: CandidateScore[];
  /** What the candidates' FVUs measure: the readers' view of the line (logits, scores) or its whole output. */
  fvuOn?: 'readers' | 'output';
  neurons: NeuronRef[];
  /** FVU of the MLP output when only the listed neurons vary. */
  neuronsFvu: number;
  /** The listed neurons' input weights (per input entry, through the layer norm), bias and output norm. */
  neuronDetails: NeuronDetail[];
  /** Input->effect table when the MLP stays opaque. */
  table?: EffectRow[];
  /** Why no primitive was tried (e.g. the input passes through an opaque MLP). */
  skipped?: string;
}

export interface SimplifyStats {
  /** Ops that are named primitives (predicates and primitives, select/project) plus element-wise primitive lines. */
  primitives: number;
  /** Ops that are rounded (quantized) matrices. */
  rounded: number;
  /** Opaque MLP lines plus ops still carrying the original matrices. */
  opaque: number;
  /** Statements of the final program. */
  lines: number;
  /** Statements of the input program. */
  linesBefore: number;
  merged: number;
  /** Calls to evaluate (screening runs). */
  evaluations: number;
  /** Screening match of the input program and of the result. */
  baseline: number;
  match: number;
  /** Full-check-set match of the result, when `confirm` was given. */
  confirmed?: number;
  seconds: number;
  /** Incremental evaluation (primitivesStage): statement runs taken from earlier runs, computed, and sequences
   * whose prediction was already known (screening and check set together). */
  statementRuns?: { reused: number; computed: number; known: number };
  /** Set when the stage did not run (e.g. the program is larger than maxStatements). */
  skipped?: string;
  /** Set when the deadline stopped the candidates early: where. */
  truncated?: string;
}

export interface StepRecord {
  stage: 'mlp' | 'attention' | 'round' | 'merge' | 'rollback';
  line: string;
  choice: string;
  match: number;
}

export interface SimplifyResult {
  program: Program;
  stats: SimplifyStats;
  mlpExplanations: MlpExplanation[];
  steps: StepRecord[];
  /** Head dimensions of every select and aggregate (primitivesStage with a model; provenance.dims holds the kept ones). */
  heads?: HeadDimExplanation[];
}
