// Plain-data view of a GPT-2 checkpoint: the contract between the checkpoint reader, the forward pass,
// training (which writes checkpoints) and the decompiler (which re-parameterizes the weights).
// Weights are row-major Float32Arrays in Hugging Face Conv1D layout ([in, out]: y = x W + b).

export interface Tensor {
  shape: number[];
  data: Float32Array;
}

export interface Gpt2Config {
  architecture: 'GPT2LMHeadModel' | 'GPT2BCELMHeadModel';
  nLayer: number;
  nHead: number;
  nEmbd: number;
  nPositions: number;
  vocabSize: number;
  /** Always gelu_new for accepted checkpoints. */
  activation: 'gelu_new';
  lnEps: number;
  bosId?: number;
  eosId?: number;
  padId?: number;
}

export interface LayerNormWeights {
  weight: Tensor; // [d]
  bias: Tensor; // [d]
}

export interface BlockWeights {
  ln1: LayerNormWeights;
  attn: { cAttnW: Tensor; cAttnB: Tensor; cProjW: Tensor; cProjB: Tensor }; // [d,3d],[3d],[d,d],[d]
  ln2: LayerNormWeights;
  mlp: { fcW: Tensor; fcB: Tensor; projW: Tensor; projB: Tensor }; // [d,4d],[4d],[4d,d],[d]
}

export interface Gpt2Weights {
  wte: Tensor; // [V, d]; also the (tied) unembedding
  wpe: Tensor; // [P, d]
  blocks: BlockWeights[];
  lnF: LayerNormWeights;
}

/** Objective the model was trained with: next-token cross-entropy or per-token sigmoid (formal languages). */
export type Objective = 'ce' | 'bce';

/** What the project needs to know about a model beyond its weights (see README, "Model card"). */
export interface ModelCard {
  /** Task name from the task suite (server/src/tasks). */
  task: string;
  objective: Objective;
  /** Token strings in id order (special tokens written <bos>, <sep>, <eos>, <pad>). */
  vocab: string[];
  /** Reported accuracies, if known (e.g. from training). */
  reportedAccuracy?: { lengths: [number, number]; accuracy: number }[];
  /** Where the card came from: the card file, the folder name, or an explicit --task. */
  source: 'card' | 'folder-name' | 'option';
}

export interface LoadedModel {
  /** Absolute path of the model folder. */
  dir: string;
  config: Gpt2Config;
  weights: Gpt2Weights;
  card: ModelCard;
  /** sha256 of model.safetensors (hex), recorded in extracted programs. */
  sha256: string;
  /** Non-fatal findings while loading (e.g. config special ids that disagree with the vocabulary). */
  warnings?: string[];
}
