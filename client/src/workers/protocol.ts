// Messages between the extension host and the engine worker (out/engineWorker.cjs). Model work (extraction,
// checking, training, accuracy) runs in a worker thread so the extension host keeps answering meanwhile.

export type Backend = 'wasm' | 'cpu' | 'tensorflow';

export interface ModelInfoJob {
  kind: 'modelInfo';
  dir: string;
  task?: string;
}

export interface AccuracyJob {
  kind: 'accuracy';
  dir: string;
  task?: string;
  samplesPerBin: number;
  seed: number;
  backend: Backend;
}

export interface ExtractJob {
  kind: 'extract';
  dir: string;
  task?: string;
  /** Absolute path of the .rasp to write. */
  out: string;
  /** The user agreed to overwrite an existing file. */
  force: boolean;
  seed: number;
  backend: Backend;
  targetMatch: number;
  /** Sequences per length bin for the final check; 0 = the decompiler's default. */
  samples: number;
  /** Optimisation steps per pruning stage; 0 = the decompiler's default. */
  steps: number;
  /** Sparsity-search runs; 0 = the decompiler's default. */
  runs: number;
}

export interface CheckJob {
  kind: 'check';
  rasp: string;
  /** Model folder; when absent the program header's model path is used. */
  modelDir?: string;
  samplesPerBin: number;
  seed: number;
  backend: Backend;
}

export interface TrainJob {
  kind: 'train';
  task: string;
  out: string;
  layers: number;
  heads: number;
  width: number;
  steps: number;
  seed: number;
  backend: Backend;
}

export type Job = ModelInfoJob | AccuracyJob | ExtractJob | CheckJob | TrainJob;

export interface Progress {
  stage: string;
  fraction: number;
  message?: string;
}

export interface ModelInfo {
  dir: string;
  architecture: string;
  nLayer: number;
  nHead: number;
  nEmbd: number;
  nPositions: number;
  vocabSize: number;
  parameters: number;
  task?: string;
  taskSource?: string;
  objective?: string;
  vocab: string[];
  lengthRange?: [number, number];
  reportedAccuracy?: { lengths: [number, number]; accuracy: number }[];
  sha256: string;
  /** Why the task is unknown, when it is. */
  taskProblem?: string;
  /** The task suite's names, for asking when the task is unknown. */
  knownTasks: string[];
}

export interface LengthBinResult {
  lengths: [number, number];
  value: number;
  samples: number;
}

export interface AccuracyResult {
  task: string;
  bins: LengthBinResult[];
}

/** The extraction report as the views need it (a projection of the decompiler's report). */
export interface FrontierPoint {
  edges: number;
  match: number;
  kind: 'run' | 'frontier' | 'emitted' | 'faithful';
  lambda?: number;
}

export interface ExtractReport {
  task: string;
  model: string;
  rasp: string;
  sidecar?: string;
  statements: number;
  /** Match accuracy of the final program against the model, per length bin. */
  bins: LengthBinResult[];
  match?: number;
  /** Sparsity search: edges kept vs match accuracy of every run, the Pareto frontier, the emitted program and the faithful one. */
  points: FrontierPoint[];
  targetMatch: number;
  /** Whether a pruned program kept the target match (otherwise the faithful program is opened). */
  pruned: boolean;
  /** Any further numbers the decompiler reports (timings, counts), shown as a table. */
  details: Record<string, string | number | boolean>;
  seconds: number;
}

export interface CheckReport {
  rasp: string;
  model: string;
  match: number;
  bins: LengthBinResult[];
  /** Up to ten disagreeing inputs, each with the first disagreeing statement located (server/src/check/locate.ts). */
  disagreements: { input: string; position: number; statementName?: string; line?: number; reason?: string }[];
  /** The first disagreeing input and its statement; null when every sampled sequence agrees. */
  firstDisagreement: { sequence: string; position: number; statement: { line: number; name: string }; reason: string } | null;
}

export interface TrainReport {
  dir: string;
  task: string;
  steps: number;
  details: Record<string, string | number | boolean>;
}

export type JobResult = ModelInfo | AccuracyResult | ExtractReport | CheckReport | TrainReport;

export type WorkerToHost =
  | { type: 'progress'; progress: Progress }
  | { type: 'result'; value: JobResult }
  | { type: 'error'; message: string; user: boolean; cancelled: boolean };

export type HostToWorker = { type: 'cancel' };

/** The files extraction writes next to `out` (program, faithful twin, report); the host asks before replacing any. */
export function extractOutputs(out: string): string[] {
  const stem = out.replace(/\.rasp$/, '');
  return [`${stem}.rasp`, `${stem}.weights.safetensors`, `${stem}.unpruned.rasp`, `${stem}.unpruned.weights.safetensors`, `${stem}.report.json`];
}
