// The typed program model: the one contract between the language (parser/validator/printer), the interpreter,
// the decompiler's emitter, the language server and the debugger. What is printed is exactly what is executed.
//
// A program is a list of statements over per-position variables. Every variable has a basis (what its vector
// entries mean); every statement may carry provenance (where in the model it came from).

/** What the entries of a variable's per-position vector mean. */
export type BasisKind =
  | 'token' // vocabulary ids (one-hot for `token`)
  | 'pos' // absolute positions 0..P-1 (one-hot for `pos`)
  | 'feature' // a primitive's feature basis (e.g. exists -> 2, diff -> 12)
  | 'product' // Cartesian product of bases, labels "a-b"
  | 'residual' // d_model residual stream (output of an opaque MLP)
  | 'numeric'; // a single real number (hand-written arithmetic maps)

export interface Basis {
  readonly kind: BasisKind;
  readonly size: number;
  /** One label per entry (token strings, position numbers, feature names). */
  readonly labels: readonly string[];
}

export interface SpecialIds {
  bos?: number;
  sep?: number;
  eos?: number;
  pad?: number;
}

export interface ProgramHeader {
  /** Optional program name. */
  name?: string;
  /** Token strings in id order; special tokens are written `<bos>`, `<sep>`, `<eos>`, `<pad>`. */
  vocab: string[];
  /** Ids of the special tokens, derived from `vocab`. */
  special: SpecialIds;
  /** Size of the position basis P (positions 0..P-1). */
  positions: number;
  /** Output kind: softmax (argmax decision) or sigmoid (per-token logit > 0 decisions). */
  output: 'softmax' | 'sigmoid';
  /** When given, summed select scores are divided by sqrt(dHead) before the softmax (as in the model). */
  dHead?: number;
  /** The paper's task name, when the program was extracted from (or written for) a task. */
  task?: string;
  /** For extracted programs: the model folder (relative to the .rasp file) and a content hash of its weights. */
  model?: { path: string; sha256: string };
  /** Sidecar safetensors file (relative to the .rasp) holding named matrices and opaque MLP weights. */
  weights?: string;
  /** Example input in the CLI `--input` format, used by inlay hints, code lens and the debugger. */
  example?: string;
}

/** Where a statement came from in the model. */
export interface Provenance {
  layer: number;
  /** Head index for select/aggregate lines; null for MLP lines and projections. */
  head: number | null;
  /** True for lines computed by an MLP. */
  mlp: boolean;
  /** Residual paths, read right to left (e.g. `attn_output-0-0-wte`); see d-rasp.md 1.1. */
  paths: { q?: string; k?: string; v?: string; input?: string };
  /** Hidden neurons of the MLP that carry this line (MLP lines only). */
  neurons?: NeuronRef[];
  /** Head dimensions (0..d_head-1) that matter for this select/aggregate, most important first. */
  dims?: number[];
  /** Per entry of `dims`: its score (share of the line's effect it carries; see docs/primitives.md). */
  dimScores?: number[];
  /**
   * Kept dims beyond those listed (annotation `dims=...,+N`): a wide head can keep most of its 256 dims, so the
   * annotation lists the top ones and the report's `primitives.heads` has them all.
   */
  dimsMore?: number;
}

export interface NeuronRef {
  /** Index of the hidden unit in the MLP's c_fc output (0..4d-1). */
  index: number;
  /** Attribution score (share of the line's effect carried by this neuron). */
  score?: number;
}

/** Expressions: predicates in op labels (`k==q-1`, `out==EOS`) and hand-written element-wise maps. */
export type Expr =
  | { kind: 'num'; value: number }
  /** In predicates: q, k (select), inp, out (project). In maps: an earlier variable's value (numeric basis). */
  | { kind: 'ref'; name: string }
  | { kind: 'special'; name: 'BOS' | 'SEP' | 'EOS' | 'PAD' }
  /** A token literal, written "a" (compares by token identity). */
  | { kind: 'token'; text: string }
  /** Component of a variable at the current position: `a1["a"]` (by token) or `a1[3]` (by basis index). */
  | { kind: 'index'; target: string; key: Expr }
  | { kind: 'unary'; op: '-' | '!'; arg: Expr }
  | {
      kind: 'binary';
      op: '+' | '-' | '*' | '/' | '%' | '==' | '!=' | '<' | '<=' | '>' | '>=' | '&&' | '||';
      left: Expr;
      right: Expr;
    }
  | { kind: 'call'; fn: string; args: Expr[] };

/** Named attention/logit patterns that are not predicates. */
export type PrimitiveName = 'uniform' | 'first' | 'last';

/** An op matrix: rows = query/input basis, cols = key basis (select) or vocabulary (project). */
export type Op =
  /** M[r, c] = scale * [expr holds]. `label` is the text between the parentheses, exactly as written. */
  | { kind: 'predicate'; label: string; expr: Expr; scale: number }
  /** uniform = zero matrix; first/last = scores favouring the earliest/latest key. */
  | { kind: 'primitive'; name: PrimitiveName; label: string; scale: number }
  /** A named matrix from the file or the sidecar (`op=M3`, the paper's `\circled{a}`). */
  | { kind: 'matrix'; ref: string };

/** Element-wise functions applied per position (d-rasp.md 5.1), plus opaque MLPs and hand-written maps. */
export type ElementwiseFn =
  | { name: 'harden' }
  | { name: 'sharpen'; power: number }
  | { name: 'exists'; index: number }
  | { name: 'forall'; threshold: number }
  | { name: 'equal'; indices: number[] }
  | { name: 'balance'; which: '01' | 'AB'; p: number; c: number }
  | { name: 'diff'; i: number; j: number }
  /**
   * Beyond the paper: entry i minus entry j of an aggregate in units of entry `by` (BOS, which every prefix holds
   * once), times `scale`, rounded: a count difference (Dyck depth) at any length, one-hot over
   * -COUNT_DIFF_RANGE..COUNT_DIFF_RANGE (clamped) plus a flag when entry `by` is 0.
   */
  | { name: 'count_diff'; i: number; j: number; by: number; scale: number }
  | { name: 'erase' }
  | { name: 'cartesian' }
  | { name: 'keep_one'; index: number }
  /** Opaque MLP (`element_wise_op(x)`, `mlp(x+y)`): weights in the sidecar under `ref` (see OpaqueMlp). */
  | { name: 'mlp'; ref: string }
  /** Hand-written arithmetic map; result basis is numeric (size 1) unless it is a boolean (size 2: false,true). */
  | { name: 'expr'; expr: Expr };

interface StatementBase {
  /** The variable this statement defines. */
  name: string;
  /** 1-based line of the statement in its file (0 when built in memory). */
  line: number;
  provenance?: Provenance;
}

export interface SelectStatement extends StatementBase {
  kind: 'select';
  /** Query variable; absent for key-only selects (score depends on the key only). */
  q?: string;
  k: string;
  op: Op;
  /** Rows of special query tokens use this op instead (token-basis queries only). */
  specialOp?: Op;
}

export interface AggregateStatement extends StatementBase {
  kind: 'aggregate';
  /** Selector names whose scores are summed; empty = uniform attention over the causal prefix. */
  selectors: string[];
  v: string;
}

export interface ElementwiseStatement extends StatementBase {
  kind: 'elementwise';
  fn: ElementwiseFn;
  inputs: string[];
}

export interface ProjectStatement extends StatementBase {
  kind: 'project';
  /** Input variable; absent for the bias (constant) term. */
  inp?: string;
  op: Op;
  /** Rows of special input tokens use this op instead (token-basis inputs only). */
  specialOp?: Op;
}

export interface PredictionStatement extends StatementBase {
  kind: 'prediction';
  fn: 'softmax' | 'sigmoid';
  /** Names of the logits variables summed. */
  terms: string[];
}

export type Statement =
  | SelectStatement
  | AggregateStatement
  | ElementwiseStatement
  | ProjectStatement
  | PredictionStatement;

/** Dense row-major matrix. */
export interface Matrix {
  rows: number;
  cols: number;
  data: Float32Array | Float64Array;
}

/**
 * Everything needed to run an MLP exactly on a line's inputs (d-rasp.md section 6):
 * input(i) = sum_k x_k(i) * E_k + constant;  h = LNlin(input) = (input - mean) * gamma / sqrt(variance + eps);
 * out(i) = gelu_new(h * fcW + fcB) * projW + projB   (a d_model vector: the residual basis).
 */
export interface OpaqueMlp {
  /** One residual embedding per input variable: basis(x_k) x d_model. */
  inputEmbeddings: Matrix[];
  constant?: Float32Array;
  lnGamma: Float32Array;
  lnVariance: number;
  lnEps: number;
  fcW: Matrix; // d x 4d
  fcB: Float32Array;
  projW: Matrix; // 4d x d
  projB: Float32Array;
}

export interface Program {
  header: ProgramHeader;
  statements: Statement[];
  /** Named matrices (in-file or sidecar), resolved. */
  matrices: Map<string, Matrix>;
  /** Opaque MLP weights by ref. */
  mlps: Map<string, OpaqueMlp>;
  /** Absolute path of the source file, when loaded from disk. */
  file?: string;
}
