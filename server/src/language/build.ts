// AST -> Program with validation. Every problem becomes a diagnostic with the most precise range available (the
// offending name, op or annotation field), so the CLI, the language server and tests all report the same thing.
// The builder also records every name occurrence and statement basis: the language server's definition,
// references, rename, hover and semantic tokens read those instead of re-walking the tree.
import { AstUtils, GrammarAST, GrammarUtils, isCompositeCstNode, type AstNode, type CstNode } from 'langium';
import type { Range } from 'vscode-languageserver-types';
import * as ast from './generated/ast';
import type {
  Basis,
  ElementwiseFn,
  Expr,
  Matrix,
  OpaqueMlp,
  Op,
  Program,
  ProgramHeader,
  SpecialIds,
  Statement,
} from '../program/types';
import { basisOfStatement, exprChildren, posBasis, ProgramError, tokenBasis } from '../program/bases';
import { parseAnnotation, type AnnotationPart, type ParsedAnnotation } from '../program/provenance';

export type Severity = 'error' | 'warning' | 'info';

export interface BuildDiagnostic {
  severity: Severity;
  message: string;
  /** 0-based LSP range. */
  range: Range;
}

export type SymbolKind = 'variable' | 'selector' | 'logits' | 'matrix' | 'builtin';

export interface SymbolOccurrence {
  name: string;
  range: Range;
  /** True at the defining occurrence. */
  def: boolean;
  kind: SymbolKind;
}

export type Category = 'selector' | 'value' | 'logits' | 'prediction';

export interface StatementInfo {
  statement: Statement;
  node: ast.Statement;
  category: Category;
  /** Basis of the defined variable (values, logits); undefined when unknown (e.g. an MLP without weights). */
  basis?: Basis;
  annotation?: ParsedAnnotation & { range: Range };
}

export interface MatrixInfo {
  name: string;
  node: ast.MatrixDecl;
  rows?: number;
  cols?: number;
  sidecar: boolean;
}

export interface BuildResult {
  /** The program, when there are no errors. */
  program?: Program;
  /** Best-effort program (always present; statements with errors may be missing). */
  partial: Program;
  diagnostics: BuildDiagnostic[];
  occurrences: SymbolOccurrence[];
  statements: StatementInfo[];
  matrices: Map<string, MatrixInfo>;
  /** Annotation fields with their roles, for semantic highlighting. */
  annotationParts: { range: Range; role: AnnotationPart['role'] }[];
}

export interface BuildOptions {
  file?: string;
  /** Sidecar contents, when loaded: matrices by name and opaque MLP weights by ref. */
  sidecar?: { matrices: Map<string, Matrix>; mlps: Map<string, OpaqueMlp> };
}

/** Largest position range accepted (the models use at most a few hundred; the bound keeps bases allocatable). */
export const MAX_POSITIONS = 65_536;

/** Scale of predefined ops (d-rasp.md 3: the generator asserts 1e4). */
export const DEFAULT_SCALE = 1e4;

/** Functions a hand-written map or predicate may call, with their arity (undefined = one or more). */
export const EXPR_FUNCTION_ARITY: Readonly<Record<string, number | undefined>> = {
  abs: 1, sign: 1, floor: 1, ceil: 1, round: 1, sqrt: 1, exp: 1, log: 1, relu: 1, pow: 2, clamp: 3, min: undefined, max: undefined,
};
export const EXPR_FUNCTIONS = Object.keys(EXPR_FUNCTION_ARITY);

const SPECIAL_NAMES = ['BOS', 'SEP', 'EOS', 'PAD'] as const;
type SpecialName = (typeof SPECIAL_NAMES)[number];
const COMPARISONS = new Set(['==', '!=', '<', '<=', '>', '>=']);

const ZERO_RANGE: Range = { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } };

const propertyCache = new WeakMap<AstNode, Map<string, CstNode[]>>();
/** Grammar element -> the feature of its enclosing assignment (null when none); grammar elements are shared. */
const featureCache = new WeakMap<object, string | null>();

function assignedFeature(c: CstNode): string | null {
  const source = c.grammarSource;
  if (!source) return null;
  let feature = featureCache.get(source);
  if (feature === undefined) {
    feature = AstUtils.getContainerOfType(source, GrammarAST.isAssignment)?.feature ?? null;
    featureCache.set(source, feature);
  }
  return feature;
}

/**
 * CST nodes of every assigned property of `node`, collected in one walk (what GrammarUtils.findNodesForProperty
 * finds for one property; asking per property would walk the statement several times on long programs).
 */
export function propertyNodes(node: AstNode): Map<string, CstNode[]> {
  let map = propertyCache.get(node);
  if (map) return map;
  const found = new Map<string, CstNode[]>();
  const visit = (c: CstNode, top: boolean): void => {
    if (!top) {
      const feature = assignedFeature(c);
      if (feature !== null) {
        const list = found.get(feature);
        if (list) list.push(c);
        else found.set(feature, [c]);
        return;
      }
    }
    if (isCompositeCstNode(c) && c.astNode === node) for (const child of c.content) visit(child, false);
  };
  if (node.$cstNode) visit(node.$cstNode, true);
  map = found;
  propertyCache.set(node, map);
  return map;
}

export function rangeOf(node: AstNode | undefined, property?: string, index?: number): Range {
  const cst = node?.$cstNode;
  if (!cst || !node) return ZERO_RANGE;
  if (property) {
    const sub = propertyNodes(node).get(property)?.[index ?? 0];
    if (sub) return sub.range;
  }
  return cst.range;
}

function keywordRange(node: AstNode, keyword: string): Range {
  return GrammarUtils.findNodeForKeyword(node.$cstNode, keyword)?.range ?? rangeOf(node);
}

/** Token text of a vocabulary entry: quoted strings are unquoted; everything else is taken as written. */
function vocabText(cst: CstNode): string {
  const t = cst.text;
  if (t.startsWith('"')) {
    try {
      return JSON.parse(t) as string;
    } catch {
      return t.slice(1, -1);
    }
  }
  return t;
}

/** The vocabulary as written in the header (works on trees from error recovery too). */
export function vocabOf(root: ast.RaspFile): string[] {
  const decl = root.header.find(ast.isVocabDecl);
  return decl ? (propertyNodes(decl).get('tokens') ?? []).map(vocabText) : [];
}

/** Parses a primitive call name: `is_3_exists`, `diff_01`, `diff_1_12`. */
function parsePrimitiveName(fn: string): { kind: string; a?: number; b?: number } | undefined {
  let m = /^is_(\d+)_exists$/.exec(fn);
  if (m) return { kind: 'exists', a: Number(m[1]) };
  m = /^diff_(\d)(\d)$/.exec(fn) ?? /^diff_(\d+)_(\d+)$/.exec(fn);
  if (m) return { kind: 'diff', a: Number(m[1]), b: Number(m[2]) };
  m = /^count_diff_(\d)(\d)$/.exec(fn) ?? /^count_diff_(\d+)_(\d+)$/.exec(fn);
  if (m) return { kind: 'count_diff', a: Number(m[1]), b: Number(m[2]) };
  const simple: Record<string, string> = {
    harden: 'harden',
    sharpen: 'sharpen',
    is_pure: 'forall',
    // `equal` has no printed name in the original generator (which crashes on it); we name it is_uniform.
    is_uniform: 'equal',
    is_01_balance: 'balance01',
    is_AB_balance: 'balanceAB',
    erase: 'erase',
    Cartesian_product: 'cartesian',
    keep_one: 'keep_one',
    element_wise_op: 'mlp',
    mlp: 'mlp',
  };
  const k = simple[fn];
  return k ? { kind: k } : undefined;
}

export const PRIMITIVE_FUNCTIONS = [
  'harden',
  'sharpen',
  'is_N_exists',
  'is_pure',
  'is_uniform',
  'is_01_balance',
  'is_AB_balance',
  'diff_IJ',
  'count_diff_IJ',
  'erase',
  'Cartesian_product',
  'keep_one',
  'element_wise_op',
  'mlp',
] as const;

interface VarDef {
  name: string;
  category: Category | 'builtin';
  /** Statement index, -1 for builtins. */
  index: number;
  line: number;
  basis?: Basis;
  /** True when the basis could not be inferred (unknown size). */
  unknown: boolean;
  kind: SymbolKind;
}

type ExprMode = 'select' | 'select-k' | 'project' | 'project-bias' | 'map';

class Builder {
  readonly diagnostics: BuildDiagnostic[] = [];
  readonly occurrences: SymbolOccurrence[] = [];
  readonly statements: StatementInfo[] = [];
  readonly matrices = new Map<string, MatrixInfo>();
  readonly annotationParts: BuildResult['annotationParts'] = [];
  readonly vars = new Map<string, VarDef>();
  /** Bases of the values defined so far (kept incrementally: rebuilding it per line is quadratic). */
  private readonly bases = new Map<string, Basis>();
  private program!: Program;
  private stmtErrors = 0;

  constructor(
    private readonly root: ast.RaspFile,
    private readonly options: BuildOptions,
  ) {}

  error(message: string, range: Range): void {
    this.diagnostics.push({ severity: 'error', message, range });
    this.stmtErrors++;
  }

  warn(message: string, range: Range): void {
    this.diagnostics.push({ severity: 'warning', message, range });
  }

  run(): BuildResult {
    const header = this.buildHeader();
    this.program = {
      header,
      statements: [],
      matrices: new Map(),
      mlps: new Map(this.options.sidecar?.mlps ?? []),
      ...(this.options.file ? { file: this.options.file } : {}),
    };
    this.vars.set('token', { name: 'token', category: 'builtin', index: -1, line: 0, basis: tokenBasis(this.program), unknown: false, kind: 'builtin' });
    this.vars.set('pos', { name: 'pos', category: 'builtin', index: -1, line: 0, basis: posBasis(this.program), unknown: false, kind: 'builtin' });
    this.bases.set('token', tokenBasis(this.program));
    this.bases.set('pos', posBasis(this.program));
    this.collectMatrices();
    for (const el of this.root.elements) {
      if (ast.isMatrixDecl(el)) continue;
      this.stmtErrors = 0;
      const before = this.diagnostics.length;
      const info = this.buildStatement(el);
      if (info) {
        this.statements.push(info);
        this.program.statements.push(info.statement);
      }
      void before;
    }
    for (const stray of propertyNodes(this.root).get('strays') ?? []) {
      this.warn('this provenance annotation is not attached to a statement: put it at the end of the statement it describes', stray.range);
    }
    this.checkPrediction(header);
    this.checkUnused();
    const hasErrors = this.diagnostics.some((d) => d.severity === 'error');
    return {
      ...(hasErrors ? {} : { program: this.program }),
      partial: this.program,
      diagnostics: this.diagnostics,
      occurrences: this.occurrences,
      statements: this.statements,
      matrices: this.matrices,
      annotationParts: this.annotationParts,
    };
  }

  // ---- header ---------------------------------------------------------------------------------------------
  private buildHeader(): ProgramHeader {
    const seen = new Map<string, ast.HeaderItem>();
    let vocab: string[] = [];
    let positions = 0;
    let output: 'softmax' | 'sigmoid' | undefined;
    const header: Partial<ProgramHeader> = {};
    const special: SpecialIds = {};
    for (const item of this.root.header) {
      const prev = seen.get(item.$type);
      if (prev) this.error(`the header already has a ${headerKeyword(item)} line (line ${rangeOf(prev).start.line + 1})`, rangeOf(item));
      seen.set(item.$type, item);
      switch (item.$type) {
        case 'ProgramDecl':
          header.name = unquote(item.title);
          break;
        case 'VocabDecl': {
          const nodes = propertyNodes(item).get('tokens') ?? [];
          vocab = nodes.map(vocabText);
          const index = new Map<string, number>();
          nodes.forEach((n, i) => {
            const t = vocab[i];
            if (index.has(t)) this.error(`token '${t}' appears twice in the vocabulary (ids ${index.get(t)} and ${i})`, n.range);
            index.set(t, i);
            const m = /^<(bos|sep|eos|pad)>$/.exec(t);
            if (m) special[m[1] as keyof SpecialIds] = i;
          });
          if (vocab.length === 0) this.error('the vocabulary is empty', rangeOf(item));
          break;
        }
        case 'PositionsDecl':
          positions = item.count;
          if (!Number.isInteger(positions) || positions < 1) this.error(`positions must be a positive integer, got ${positions}`, rangeOf(item, 'count'));
          else if (positions > MAX_POSITIONS) {
            this.error(`positions ${positions} is over the limit of ${MAX_POSITIONS}`, rangeOf(item, 'count'));
            positions = 0;
          }
          break;
        case 'OutputDecl':
          output = item.kind;
          break;
        case 'DHeadDecl':
          header.dHead = item.value;
          if (!Number.isInteger(item.value) || item.value < 1) this.error(`d_head must be a positive integer, got ${item.value}`, rangeOf(item, 'value'));
          break;
        case 'TaskDecl':
          header.task = unquote(item.task);
          break;
        case 'ModelDecl': {
          const sha = item.sha !== undefined ? unquote(item.sha) : '';
          header.model = { path: unquote(item.path), sha256: sha };
          if (item.sha !== undefined && !/^[0-9a-f]{64}$/.test(sha)) this.warn('sha256 should be 64 lowercase hex digits', rangeOf(item, 'sha'));
          break;
        }
        case 'WeightsDecl':
          header.weights = unquote(item.file);
          break;
        case 'ExampleDecl':
          header.example = unquote(item.input);
          break;
      }
    }
    const firstLine: Range = this.root.$cstNode ? { start: this.root.$cstNode.range.start, end: this.root.$cstNode.range.start } : ZERO_RANGE;
    if (!seen.has('VocabDecl')) this.error('the header has no `vocab [...]` line (token strings in id order)', firstLine);
    if (!seen.has('PositionsDecl')) this.error('the header has no `positions N` line', firstLine);
    const prediction = this.root.elements.find(ast.isPredictionStmt);
    if (output && prediction && prediction.fn !== output) {
      this.error(`the header says output ${output} but the prediction uses ${prediction.fn}`, rangeOf(prediction, 'fn'));
    }
    const exampleDecl = seen.get('ExampleDecl');
    if (header.example !== undefined && exampleDecl && vocab.length > 0) {
      const unknownTokens = header.example.split(/\s+/).filter((t) => t !== '' && !vocab.includes(t));
      if (unknownTokens.length > 0) this.warn(`example uses tokens not in the vocabulary: ${unknownTokens.join(' ')}`, rangeOf(exampleDecl, 'input'));
    }
    return {
      ...header,
      vocab,
      special,
      positions: positions > 0 && Number.isInteger(positions) ? positions : 1,
      output: output ?? prediction?.fn ?? 'softmax',
    };
  }

  // ---- matrices -------------------------------------------------------------------------------------------
  private collectMatrices(): void {
    for (const decl of this.root.elements.filter(ast.isMatrixDecl)) {
      const nameRange = rangeOf(decl, 'name');
      if (this.matrices.has(decl.name)) {
        this.error(`matrix '${decl.name}' is already declared`, nameRange);
        continue;
      }
      if (decl.name === 'token' || decl.name === 'pos') this.error(`'${decl.name}' is reserved`, nameRange);
      const info: MatrixInfo = { name: decl.name, node: decl, sidecar: decl.sidecar, ...(decl.rows !== undefined && decl.cols !== undefined ? { rows: decl.rows, cols: decl.cols } : {}) };
      this.matrices.set(decl.name, info);
      this.occurrences.push({ name: decl.name, range: nameRange, def: true, kind: 'matrix' });
      if (decl.rows !== undefined && (!Number.isInteger(decl.rows) || !Number.isInteger(decl.cols) || decl.rows < 1 || (decl.cols ?? 0) < 1)) {
        this.error('matrix dimensions must be positive integers', rangeOf(decl, 'rows'));
      }
      if (decl.sidecar) {
        if (decl.rows === undefined) this.error(`matrix '${decl.name}' is in the weights file: give its shape, e.g. matrix ${decl.name}[3, 6] from weights`, nameRange);
        if (!this.program.header.weights) this.error('`from weights` needs a `weights "FILE"` line in the header', keywordRange(decl, 'weights'));
        const m = this.options.sidecar?.matrices.get(decl.name);
        if (this.options.sidecar && !m) this.error(`matrix '${decl.name}' is not in the weights file ${this.program.header.weights ?? ''}`, nameRange);
        if (m) {
          if (decl.rows !== undefined && (m.rows !== decl.rows || m.cols !== decl.cols)) {
            this.error(`matrix '${decl.name}' is ${m.rows}x${m.cols} in the weights file but declared ${decl.rows}x${decl.cols}`, nameRange);
          } else {
            this.program.matrices.set(decl.name, m);
            info.rows = m.rows;
            info.cols = m.cols;
          }
        }
        continue;
      }
      const rows = decl.matrixRows;
      const cols = rows[0]?.values.length ?? 0;
      let ok = rows.length > 0 && cols > 0;
      if (!ok) this.error(`matrix '${decl.name}' is empty`, nameRange);
      rows.forEach((r, i) => {
        if (r.values.length !== cols) {
          this.error(`row ${i} of matrix '${decl.name}' has ${r.values.length} entries, row 0 has ${cols}`, rangeOf(r));
          ok = false;
        }
        r.values.forEach((v, j) => {
          if (!Number.isFinite(v)) {
            this.error('matrix entries must be finite numbers', rangeOf(r, 'values', j));
            ok = false;
          }
        });
      });
      if (ok && decl.rows !== undefined && (decl.rows !== rows.length || decl.cols !== cols)) {
        this.error(`matrix '${decl.name}' is declared ${decl.rows}x${decl.cols} but has ${rows.length}x${cols} entries`, nameRange);
        ok = false;
      }
      if (ok) {
        const data = new Float64Array(rows.length * cols);
        rows.forEach((r, i) => r.values.forEach((v, j) => (data[i * cols + j] = v)));
        this.program.matrices.set(decl.name, { rows: rows.length, cols, data });
        info.rows = rows.length;
        info.cols = cols;
      }
    }
  }

  // ---- names ----------------------------------------------------------------------------------------------
  /** Resolves a use of a variable; reports undefined names, forward uses and wrong categories. */
  private use(name: string, range: Range, want: Category | 'value-or-builtin', role: string): VarDef | undefined {
    const def = this.vars.get(name);
    if (!def) {
      const later = this.root.elements.find((e) => !ast.isMatrixDecl(e) && e.name === name);
      if (later) {
        this.error(`'${name}' is used before it is defined (line ${rangeOf(later).start.line + 1})`, range);
      } else if (this.matrices.has(name)) {
        this.error(`'${name}' is a matrix, not a variable`, range);
      } else {
        this.error(`'${name}' is not defined`, range);
      }
      return undefined;
    }
    this.occurrences.push({ name, range, def: false, kind: def.kind });
    const cat = def.category === 'builtin' ? 'value' : def.category;
    const wanted = want === 'value-or-builtin' ? 'value' : want;
    if (cat !== wanted) {
      const what: Record<Category, string> = { selector: 'a selector', value: 'a variable', logits: 'a logits (projection) variable', prediction: 'the prediction' };
      this.error(`${role} '${name}' must be ${what[wanted]}, but it is ${what[cat]}`, range);
      return undefined;
    }
    return def;
  }

  private define(name: string, range: Range, category: Category): boolean {
    if (name === 'token' || name === 'pos') {
      this.error(`'${name}' is a built-in variable and cannot be redefined`, range);
      return false;
    }
    const prev = this.vars.get(name);
    if (prev) {
      this.error(`'${name}' is already defined on line ${prev.line}`, range);
      return false;
    }
    if (this.matrices.has(name) && category !== 'selector' && category !== 'logits') {
      this.warn(`'${name}' is also the name of a matrix`, range);
    }
    return true;
  }

  // ---- statements -----------------------------------------------------------------------------------------
  private buildStatement(node: ast.Statement): StatementInfo | undefined {
    const nameRange = rangeOf(node, 'name');
    const line = rangeOf(node).start.line + 1;
    const annotation = this.buildAnnotation(node);
    const provenance = annotation?.provenance;
    const base = { name: node.name, line, ...(provenance ? { provenance } : {}) };
    let statement: Statement | undefined;
    let category: Category;
    const deps: (VarDef | undefined)[] = [];
    switch (node.$type) {
      case 'SelectStmt': {
        category = 'selector';
        const q = node.q !== undefined ? this.use(node.q, rangeOf(node, 'q'), 'value', 'query') : undefined;
        const k = this.use(node.k, rangeOf(node, 'k'), 'value', 'key');
        deps.push(q, k);
        const mode: ExprMode = node.q !== undefined ? 'select' : 'select-k';
        const sides = { q: q?.basis, k: k?.basis };
        const op = node.op ? this.buildOp(node, node.op, 'op', mode, sides, node.scale) : this.implicitMatrix(node, undefined);
        const specialOp = node.specialOp ? this.buildOp(node, node.specialOp, 'specialOp', mode, sides, node.specialScale ?? node.scale) : undefined;
        if (node.specialOp && node.q === undefined) this.error('special_op needs a query (q=...)', rangeOf(node, 'specialOp'));
        if (op) {
          statement = { ...base, kind: 'select', ...(node.q !== undefined ? { q: node.q } : {}), k: node.k, op, ...(specialOp ? { specialOp } : {}) };
        }
        if (provenance && (provenance.mlp || provenance.head === null)) this.warn('a select comes from an attention head: expected `# layer L head H`', annotation.range);
        break;
      }
      case 'AggregateStmt': {
        category = 'value';
        const selectorNodes = propertyNodes(node).get('selectors') ?? [];
        node.selectors.forEach((s, i) => {
          this.use(s, selectorNodes[i]?.range ?? rangeOf(node), 'selector', 'selector');
        });
        const v = this.use(node.v, rangeOf(node, 'v'), 'value', 'value');
        deps.push(v);
        statement = { ...base, kind: 'aggregate', selectors: [...node.selectors], v: node.v };
        break;
      }
      case 'ProjectStmt': {
        category = 'logits';
        const inp = node.inp !== undefined ? this.use(node.inp, rangeOf(node, 'inp'), 'value', 'input') : undefined;
        deps.push(inp);
        const mode: ExprMode = node.inp !== undefined ? 'project' : 'project-bias';
        let op: Op | undefined;
        let specialOp: Op | undefined;
        if (node.form === 'project') {
          if (!node.op) break;
          op = this.buildOp(node, node.op, 'op', mode, { inp: inp?.basis }, node.scale);
          specialOp = node.specialOp ? this.buildOp(node, node.specialOp, 'specialOp', mode, { inp: inp?.basis }, node.specialScale ?? node.scale) : undefined;
          if (node.specialOp && node.inp === undefined) this.error('special_op needs an input (inp=...)', rangeOf(node, 'specialOp'));
        } else {
          // proj_to_vocab(X): the original (unreplaced) readout, a matrix named after the statement.
          op = this.implicitMatrix(node, inp ? inp.basis?.size : 1);
        }
        if (op) statement = { ...base, kind: 'project', ...(node.inp !== undefined ? { inp: node.inp } : {}), op, ...(specialOp ? { specialOp } : {}) };
        break;
      }
      case 'PredictionStmt': {
        category = 'prediction';
        // One CST walk for all terms (a lookup per index would be quadratic in long sums).
        const termNodes = propertyNodes(node).get('terms') ?? [];
        node.terms.forEach((t, i) => {
          deps.push(this.use(t, termNodes[i]?.range ?? rangeOf(node), 'logits', 'term'));
        });
        statement = { ...base, kind: 'prediction', fn: node.fn, terms: [...node.terms] };
        break;
      }
      case 'MapStmt': {
        category = 'value';
        const built = this.buildElementwise(node);
        if (built) statement = { ...base, kind: 'elementwise', fn: built.fn, inputs: built.inputs };
        break;
      }
    }
    const ok = this.define(node.name, nameRange, category);
    if (!statement || !ok) {
      // Keep the name resolvable (with unknown basis) so one error does not cascade into many.
      if (ok) this.vars.set(node.name, { name: node.name, category, index: this.statements.length, line, unknown: true, kind: kindOf(category) });
      if (ok) this.occurrences.push({ name: node.name, range: nameRange, def: true, kind: kindOf(category) });
      return undefined;
    }
    this.occurrences.push({ name: node.name, range: nameRange, def: true, kind: kindOf(category) });
    const basis = this.inferBasis(node, statement, category);
    this.vars.set(node.name, { name: node.name, category, index: this.statements.length, line, ...(basis ? { basis } : {}), unknown: !basis, kind: kindOf(category) });
    if (basis && category !== 'selector') this.bases.set(node.name, basis);
    return { statement, node, category, ...(basis ? { basis } : {}), ...(annotation ? { annotation } : {}) };
  }

  private inferBasis(node: ast.Statement, stmt: Statement, category: Category): Basis | undefined {
    if (category === 'selector' && stmt.kind !== 'select') return undefined;
    // Skip when an input's basis is unknown (an MLP without loaded weights, or an earlier error).
    const names: string[] = [];
    if (stmt.kind === 'select') names.push(...(stmt.q !== undefined ? [stmt.q] : []), stmt.k);
    if (stmt.kind === 'aggregate') names.push(stmt.v);
    if (stmt.kind === 'project' && stmt.inp !== undefined) names.push(stmt.inp);
    if (stmt.kind === 'elementwise') {
      names.push(...stmt.inputs);
      if (stmt.fn.name === 'mlp' && !this.program.mlps.has(stmt.fn.ref)) {
        if (this.options.sidecar) this.error(`the weights file has no opaque MLP weights for '${stmt.fn.ref}'`, rangeOf(node, 'name'));
        else if (!this.program.header.weights) this.error(`opaque MLP '${stmt.name}' needs its weights: add a \`weights "FILE"\` header line`, rangeOf(node, 'name'));
        return undefined;
      }
    }
    if (names.some((n) => this.vars.get(n)?.unknown !== false)) return undefined;
    // Without a vocabulary or position count every basis size would be wrong; the header error says why.
    if (this.program.header.vocab.length === 0 || !this.root.header.some(ast.isPositionsDecl)) return undefined;
    if (this.stmtErrors > 0) return undefined;
    const bases = this.bases;
    try {
      const b = basisOfStatement(this.program, stmt, bases);
      this.checkDeclaredShapes(node, stmt, bases);
      if (stmt.kind === 'elementwise' && stmt.fn.name === 'expr') this.checkIndexKeys(node, stmt.fn.expr, bases);
      return b;
    } catch (err) {
      if (err instanceof ProgramError) {
        const exprNode: AstNode | undefined = ast.isMapStmt(node) ? node.expr : undefined;
        const where =
          /matrix/.test(err.detail) && 'op' in node && node.op
            ? rangeOf(node, 'op')
            : /special_op/.test(err.detail)
              ? rangeOf(node, 'specialOp')
              : (exprNode?.$cstNode?.range ?? rangeOf(node));
        this.error(err.detail, where);
        return undefined;
      }
      throw err;
    }
  }

  /** Shapes of matrices only declared for the sidecar (not loaded): bases.ts cannot see them. */
  private checkDeclaredShapes(node: ast.Statement, stmt: Statement, bases: Map<string, Basis>): void {
    const V = this.program.header.vocab.length;
    const check = (op: Op | undefined, prop: string, rows: number, cols: number): void => {
      if (!op || op.kind !== 'matrix' || this.program.matrices.has(op.ref)) return;
      const m = this.matrices.get(op.ref);
      if (m?.rows !== undefined && (m.rows !== rows || m.cols !== cols)) {
        this.error(`matrix ${op.ref} is ${m.rows}x${m.cols}, expected ${rows}x${cols}`, rangeOf(node, prop));
      }
    };
    if (stmt.kind === 'select') {
      const rows = stmt.q !== undefined ? (bases.get(stmt.q)?.size ?? 0) : 1;
      const cols = bases.get(stmt.k)?.size ?? 0;
      check(stmt.op, 'op', rows, cols);
      check(stmt.specialOp, 'specialOp', rows, cols);
    } else if (stmt.kind === 'project') {
      const rows = stmt.inp !== undefined ? (bases.get(stmt.inp)?.size ?? 0) : 1;
      check(stmt.op, ast.isProjectStmt(node) && node.op ? 'op' : 'name', rows, V);
      check(stmt.specialOp, 'specialOp', rows, V);
    }
  }

  private checkIndexKeys(node: ast.Statement, expr: Expr, bases: Map<string, Basis>): void {
    const exprNode: AstNode | undefined = ast.isMapStmt(node) ? node.expr : undefined;
    const where = exprNode?.$cstNode?.range ?? rangeOf(node);
    const walk = (e: Expr): void => {
      switch (e.kind) {
        case 'index': {
          const b = bases.get(e.target);
          if (b && e.key.kind === 'token' && !b.labels.includes(e.key.text)) {
            this.error(`'${e.target}' has no entry "${e.key.text}" (its basis: ${b.labels.slice(0, 8).join(' ')}${b.size > 8 ? ' ...' : ''})`, where);
          }
          if (b && e.key.kind === 'num' && (!Number.isInteger(e.key.value) || e.key.value < 0 || e.key.value >= b.size)) {
            this.error(`index ${e.key.value} is outside '${e.target}' (size ${b.size})`, where);
          }
          exprChildren(e).forEach(walk);
          break;
        }
        case 'ref': {
          const b = bases.get(e.name);
          if (b && b.size > 2) {
            this.error(`'${e.name}' has ${b.size} entries; pick one with ${e.name}["..."] or ${e.name}[i]`, where);
          }
          break;
        }
        default:
          exprChildren(e).forEach(walk);
          break;
      }
    };
    walk(expr);
  }

  private buildAnnotation(node: ast.Statement): (ParsedAnnotation & { range: Range }) | undefined {
    if (node.annotation === undefined) return undefined;
    const cst = propertyNodes(node).get('annotation')?.[0];
    if (!cst) return undefined;
    const parsed = parseAnnotation(cst.text);
    const at = (start: number, end: number): Range => ({
      start: { line: cst.range.start.line, character: cst.range.start.character + start },
      end: { line: cst.range.start.line, character: cst.range.start.character + end },
    });
    for (const p of parsed.parts) this.annotationParts.push({ range: at(p.start, p.end), role: p.role });
    for (const p of parsed.problems) this.warn(p.message, at(p.start, p.end));
    // An annotation belongs at the end of its statement's line; on a line of its own it would silently
    // attach to the statement above.
    const stmt = node.$cstNode;
    if (stmt) {
      const before = stmt.root.fullText.slice(stmt.offset, cst.offset);
      if (/\n[ \t]*$/.test(before)) this.warn(`this annotation belongs to '${node.name}' on the line above; put it at the end of that statement's line`, cst.range);
    }
    return { ...parsed, range: cst.range };
  }

  private implicitMatrix(node: ast.Statement, _rows: number | undefined): Op | undefined {
    if (!this.matrices.has(node.name)) {
      const form = ast.isSelectStmt(node) ? 'a select without op=' : `${(node as ast.ProjectStmt).form}(...)`;
      this.error(`${form} reads the matrix named after the line; declare \`matrix ${node.name}[R, C] from weights\` or an inline matrix ${node.name}`, rangeOf(node, 'name'));
      return undefined;
    }
    return { kind: 'matrix', ref: node.name };
  }

  private buildOp(
    node: ast.SelectStmt | ast.ProjectStmt,
    spec: ast.OpSpec,
    prop: 'op' | 'specialOp',
    mode: ExprMode,
    sides: Partial<Record<'q' | 'k' | 'inp', Basis | undefined>>,
    scaleIn: number | undefined,
  ): Op | undefined {
    const scale = scaleIn ?? DEFAULT_SCALE;
    if (!Number.isFinite(scale)) {
      this.error('scale must be a finite number', rangeOf(node, 'scale'));
      return undefined;
    }
    if (ast.isCircledOp(spec) || ast.isNamedOp(spec)) {
      const ref = ast.isCircledOp(spec) ? /\{(.*)\}/.exec(spec.circled)![1] : spec.matrix;
      const range = rangeOf(spec);
      if (!this.matrices.has(ref)) {
        this.error(`matrix '${ref}' is not declared (add \`matrix ${ref} = [[...]]\` or \`matrix ${ref}[R, C] from weights\`)`, range);
        return undefined;
      }
      this.occurrences.push({ name: ref, range: ast.isCircledOp(spec) ? circledNameRange(range, ref) : range, def: false, kind: 'matrix' });
      if (scaleIn !== undefined) this.warn('scale= applies to labelled ops only; a matrix op is used as stored', rangeOf(node, 'scale'));
      return { kind: 'matrix', ref };
    }
    const labelNode = spec.label;
    const labelText = GrammarUtils.findNodeForProperty(spec.$cstNode, 'label')?.text.trim() ?? '';
    const range = rangeOf(spec);
    if (ast.isUniformSelection(labelNode)) return { kind: 'primitive', name: 'uniform', label: labelText, scale };
    if (labelNode.position !== undefined) {
      // The paper's `k is first` / `k is last`, read literally: attention favouring the earliest / latest key.
      const le: AstNode = labelNode.expr;
      const subject = ast.isNameExpr(le) ? le.ref : undefined;
      if ((mode === 'select' || mode === 'select-k') && subject === 'k' && (labelNode.position === 'first' || labelNode.position === 'last')) {
        return { kind: 'primitive', name: labelNode.position, label: labelText, scale };
      }
      this.error(`unknown label '${labelText}' (the legacy forms are 'k is first' and 'k is last' in selects)`, range);
      return undefined;
    }
    const labelExpr: AstNode = labelNode.expr;
    if (ast.isNameExpr(labelExpr) && ['uniform', 'first', 'last'].includes(labelExpr.ref)) {
      const name = labelExpr.ref as 'uniform' | 'first' | 'last';
      if (name !== 'uniform' && mode !== 'select' && mode !== 'select-k') {
        this.error(`'${name}' is an attention primitive; projections use predicates over inp and out, or uniform`, range);
        return undefined;
      }
      return { kind: 'primitive', name, label: labelText, scale };
    }
    const before = this.stmtErrors;
    const expr = this.toExpr(labelNode.expr, mode, sides, range);
    if (!expr || this.stmtErrors > before) return undefined;
    void prop;
    return { kind: 'predicate', label: labelText, expr, scale };
  }

  // ---- expressions ----------------------------------------------------------------------------------------
  /** Converts an expression; in predicate modes names are the sides (q, k / inp, out) and special tokens. */
  private toExpr(node: AstNode, mode: ExprMode, sides: Partial<Record<string, Basis | undefined>>, labelRange: Range): Expr | undefined {
    const rec = (n: AstNode): Expr | undefined => this.toExpr(n, mode, sides, labelRange);
    // Error recovery can leave operands missing; the syntax error is already reported.
    if (!node) return undefined;
    switch (node.$type) {
      case 'ParenExpr':
        return rec((node as ast.ParenExpr).inner);
      case 'NumberLit': {
        const v = (node as ast.NumberLit).value;
        if (!Number.isFinite(v)) {
          this.error('number out of range', rangeOf(node));
          return undefined;
        }
        return { kind: 'num', value: v };
      }
      case 'TokenLit': {
        const text = unquote((node as ast.TokenLit).text);
        if (this.program.header.vocab.length > 0 && !this.program.header.vocab.includes(text)) {
          this.error(`"${text}" is not a token of the vocabulary`, rangeOf(node));
        }
        return { kind: 'token', text };
      }
      case 'SpecialLit': {
        const text = (node as ast.SpecialLit).text;
        const m = /^<(bos|sep|eos|pad)>$/.exec(text);
        if (m) return { kind: 'special', name: m[1].toUpperCase() as SpecialName };
        if (!this.program.header.vocab.includes(text)) this.error(`${text} is not a token of the vocabulary`, rangeOf(node));
        return { kind: 'token', text };
      }
      case 'NegExpr': {
        const n = node as ast.NegExpr;
        const arg = rec(n.arg);
        // `-3` is the number -3, so printed negative constants read back unchanged.
        if (arg && n.op === '-' && arg.kind === 'num') return { kind: 'num', value: -arg.value };
        return arg ? { kind: 'unary', op: n.op, arg } : undefined;
      }
      case 'BinaryExpr': {
        const n = node as ast.BinaryExpr;
        // Python-style chained comparisons (`a == b == c` means a == b && b == c): read literally.
        const nl: AstNode = n.left;
        if (COMPARISONS.has(n.operator) && ast.isBinaryExpr(nl) && COMPARISONS.has(nl.operator)) {
          const left = rec(nl);
          const middle = rec(nl.right);
          const right = rec(n.right);
          if (!left || !middle || !right) return undefined;
          return { kind: 'binary', op: '&&', left, right: { kind: 'binary', op: n.operator, left: middle, right } };
        }
        const left = rec(n.left);
        const right = rec(n.right);
        if (!left || !right) return undefined;
        if (COMPARISONS.has(n.operator) && mode !== 'map') this.checkSideBasis(left, right, sides, rangeOf(node));
        return { kind: 'binary', op: n.operator, left, right };
      }
      case 'NameExpr': {
        const name = (node as ast.NameExpr).ref;
        const range = rangeOf(node);
        if ((SPECIAL_NAMES as readonly string[]).includes(name)) return { kind: 'special', name: name as SpecialName };
        if (mode === 'map') {
          const def = this.use(name, range, 'value', 'operand');
          return def ? { kind: 'ref', name } : undefined;
        }
        const allowed = mode === 'select' ? ['q', 'k'] : mode === 'select-k' ? ['k'] : mode === 'project' ? ['inp', 'out'] : ['out'];
        if (allowed.includes(name)) return { kind: 'ref', name };
        const hint =
          name === 'q' && mode === 'select-k'
            ? 'a key-only select has no query q'
            : name === 'inp' && mode === 'project-bias'
              ? 'a bias projection has no input inp'
              : `expected ${allowed.join(', ')}, BOS, SEP, EOS, PAD, a number or a "token"${mode.startsWith('select') ? ', or the primitives uniform, first, last' : ''}`;
        this.error(`unknown name '${name}' in the label: ${hint}`, range);
        return undefined;
      }
      case 'IndexExpr': {
        const n = node as ast.IndexExpr;
        if (mode !== 'map') {
          this.error('indexing (x[...]) is only allowed in element-wise maps', rangeOf(node));
          return undefined;
        }
        const def = this.use(n.target, rangeOf(node, 'target'), 'value', 'operand');
        // A quoted key names an entry of the target's basis (checked against its labels), not only vocabulary tokens.
        const keyNode: AstNode = n.key;
        const key: Expr | undefined = ast.isTokenLit(keyNode) ? { kind: 'token', text: unquote(keyNode.text) } : rec(keyNode);
        return def && key ? { kind: 'index', target: n.target, key } : undefined;
      }
      case 'CallExpr': {
        const n = node as ast.CallExpr;
        if (!Object.prototype.hasOwnProperty.call(EXPR_FUNCTION_ARITY, n.fn)) {
          this.error(`unknown function '${n.fn}' (expressions may call ${EXPR_FUNCTIONS.join(', ')}; primitives stand alone on a line)`, rangeOf(node, 'fn'));
          return undefined;
        }
        const want = EXPR_FUNCTION_ARITY[n.fn];
        if ((want !== undefined && n.args.length !== want) || n.args.length === 0) {
          this.error(`${n.fn} takes ${want ?? 'one or more'} argument${want === 1 ? '' : 's'}`, rangeOf(node));
          return undefined;
        }
        const args: Expr[] = [];
        for (const a of n.args) {
          if (a.argName !== undefined) this.error(`${n.fn} takes no named arguments`, rangeOf(a, 'argName'));
          const e = rec(a.value);
          if (!e) return undefined;
          args.push(e);
        }
        return { kind: 'call', fn: n.fn, args };
      }
      default:
        this.error('unexpected expression', rangeOf(node));
        return undefined;
    }
  }

  /** `k==BOS` on a position-basis key is meaningless: special tokens and "token" literals need a token side. */
  private checkSideBasis(left: Expr, right: Expr, sides: Partial<Record<string, Basis | undefined>>, range: Range): void {
    const pairs: [Expr, Expr][] = [
      [left, right],
      [right, left],
    ];
    for (const [side, lit] of pairs) {
      if (side.kind !== 'ref' || (lit.kind !== 'special' && lit.kind !== 'token')) continue;
      if (side.name === 'out') continue; // logits columns are always the vocabulary
      const basis = sides[side.name];
      if (basis && basis.kind !== 'token') {
        const what = lit.kind === 'special' ? lit.name : `"${lit.text}"`;
        this.error(`${side.name} is in a ${basis.kind} basis; comparing it with the token ${what} is only meaningful for a token-basis ${side.name}`, range);
      }
    }
  }

  // ---- element-wise ---------------------------------------------------------------------------------------
  private buildElementwise(node: ast.MapStmt): { fn: ElementwiseFn; inputs: string[] } | undefined {
    const e: AstNode = node.expr;
    const prim = ast.isCallExpr(e) ? parsePrimitiveName(e.fn) : undefined;
    if (!ast.isCallExpr(e) || !prim) {
      const refsBefore = this.occurrences.length;
      const expr = this.toExpr(e, 'map', {}, rangeOf(e));
      if (!expr) return undefined;
      const inputs = [...new Set(this.occurrences.slice(refsBefore).filter((o) => !o.def && o.kind !== 'matrix').map((o) => o.name))];
      return { fn: { name: 'expr', expr }, inputs };
    }
    const positional: { name: string; range: Range }[] = [];
    const params = new Map<string, { value: number; range: Range }>();
    const numbers: { value: number; range: Range }[] = [];
    let bad = false;
    const addInput = (x: AstNode): void => {
      if (ast.isNameExpr(x)) positional.push({ name: x.ref, range: rangeOf(x) });
      else if (ast.isBinaryExpr(x) && x.operator === '+' && prim.kind === 'mlp') {
        addInput(x.left);
        addInput(x.right);
      } else {
        const v = numberValue(x);
        if (v === undefined) {
          this.error(`arguments of ${e.fn} are variables and numbers`, rangeOf(x));
          bad = true;
        } else numbers.push({ value: v, range: rangeOf(x) });
      }
    };
    for (const a of e.args) {
      if (a.argName !== undefined) {
        const v = numberValue(a.value);
        if (v === undefined) {
          this.error(`${a.argName}= takes a number`, rangeOf(a));
          bad = true;
        } else params.set(a.argName, { value: v, range: rangeOf(a) });
      } else addInput(a.value);
    }
    if (bad) return undefined;
    const inputs: string[] = [];
    for (const p of positional) {
      if (this.use(p.name, p.range, 'value', 'input')) inputs.push(p.name);
      else bad = true;
    }
    if (bad) return undefined;
    const allowParams = (names: string[], maxNumbers: number): boolean => {
      for (const [k, v] of params) {
        if (!names.includes(k)) {
          this.error(`${e.fn} has no parameter ${k}=${names.length ? ` (parameters: ${names.join(', ')})` : ''}`, v.range);
          return false;
        }
      }
      if (numbers.length > maxNumbers) {
        this.error(`${e.fn} takes ${maxNumbers === 0 ? 'no' : `at most ${maxNumbers}`} numeric argument${maxNumbers === 1 ? '' : 's'}`, numbers[maxNumbers].range);
        return false;
      }
      return true;
    };
    const param = (name: string, positionalIndex: number, fallback: number): number => params.get(name)?.value ?? numbers[positionalIndex]?.value ?? fallback;
    switch (prim.kind) {
      case 'harden':
        return allowParams([], 0) ? { fn: { name: 'harden' }, inputs } : undefined;
      case 'sharpen':
        return allowParams(['power'], 1) ? { fn: { name: 'sharpen', power: param('power', 0, 2) }, inputs } : undefined;
      case 'exists':
        return allowParams([], 0) ? { fn: { name: 'exists', index: prim.a! }, inputs } : undefined;
      case 'forall':
        return allowParams(['threshold'], 1) ? { fn: { name: 'forall', threshold: param('threshold', 0, 0.9) }, inputs } : undefined;
      case 'equal': {
        if (!allowParams([], Number.MAX_SAFE_INTEGER)) return undefined;
        let indices = numbers.map((n) => n.value);
        if (indices.length === 0) {
          // Default of d-rasp.md 5.1: the first n-4 entries (the normal tokens of a token-like basis).
          const b = inputs.length === 1 ? this.vars.get(inputs[0])?.basis : undefined;
          if (!b) {
            this.error('is_uniform without indices needs an input of known size; list the indices, e.g. is_uniform(a1, 0, 1)', rangeOf(e));
            return undefined;
          }
          indices = Array.from({ length: Math.max(0, b.size - 4) }, (_, i) => i);
        }
        return { fn: { name: 'equal', indices }, inputs };
      }
      case 'balance01':
      case 'balanceAB':
        return allowParams(['p', 'c'], 0) ? { fn: { name: 'balance', which: prim.kind === 'balance01' ? '01' : 'AB', p: param('p', 99, 0.5), c: param('c', 99, 0) }, inputs } : undefined;
      case 'diff':
        return allowParams([], 0) ? { fn: { name: 'diff', i: prim.a!, j: prim.b! }, inputs } : undefined;
      case 'count_diff': {
        if (!allowParams(['by', 'scale'], 0)) return undefined;
        // by= defaults to the header's BOS: every prefix holds it once, so its share is 1 / (attended positions)
        const by = params.get('by')?.value ?? this.program.header.special.bos;
        if (by === undefined) {
          this.error('count_diff needs by=<entry> (the header declares no bos)', rangeOf(e));
          return undefined;
        }
        return { fn: { name: 'count_diff', i: prim.a!, j: prim.b!, by, scale: param('scale', 99, 1) }, inputs };
      }
      case 'erase':
        return allowParams([], 0) ? { fn: { name: 'erase' }, inputs } : undefined;
      case 'cartesian':
        return allowParams([], 0) ? { fn: { name: 'cartesian' }, inputs } : undefined;
      case 'keep_one':
        return allowParams(['index'], 1) ? { fn: { name: 'keep_one', index: param('index', 0, 0) }, inputs } : undefined;
      case 'mlp':
        // Opaque MLP weights live in the sidecar under the line's name.
        return allowParams([], 0) ? { fn: { name: 'mlp', ref: node.name }, inputs } : undefined;
      default:
        return undefined;
    }
  }

  // ---- whole-program checks -------------------------------------------------------------------------------
  private checkPrediction(header: ProgramHeader): void {
    const preds = this.root.elements.filter(ast.isPredictionStmt);
    if (preds.length === 0) {
      const end = this.root.$cstNode?.range.end ?? { line: 0, character: 0 };
      this.error('the program has no `prediction = softmax(...)` (or sigmoid) line', { start: end, end });
    }
    void header;
  }

  private checkUnused(): void {
    const used = new Set<string>();
    const usedMatrices = new Set<string>();
    const byName = new Map(this.statements.map((s) => [s.statement.name, s]));
    const stack = this.statements.filter((s) => s.category === 'prediction').map((s) => s.statement.name);
    const opRef = (op: Op | undefined): void => {
      if (op?.kind === 'matrix') usedMatrices.add(op.ref);
    };
    while (stack.length > 0) {
      const name = stack.pop()!;
      if (used.has(name)) continue;
      used.add(name);
      const s = byName.get(name)?.statement;
      if (!s) continue;
      switch (s.kind) {
        case 'select':
          stack.push(...(s.q !== undefined ? [s.q] : []), s.k);
          opRef(s.op);
          opRef(s.specialOp);
          break;
        case 'aggregate':
          stack.push(...s.selectors, s.v);
          break;
        case 'elementwise':
          stack.push(...s.inputs);
          break;
        case 'project':
          if (s.inp !== undefined) stack.push(s.inp);
          opRef(s.op);
          opRef(s.specialOp);
          break;
        case 'prediction':
          stack.push(...s.terms);
          break;
      }
    }
    // With errors, broken lines would make everything downstream look unused.
    if (!this.statements.some((s) => s.category === 'prediction') || this.diagnostics.some((d) => d.severity === 'error')) return;
    for (const s of this.statements) {
      if (!used.has(s.statement.name)) this.warn(`'${s.statement.name}' does not contribute to the prediction`, rangeOf(s.node, 'name'));
    }
    for (const m of this.matrices.values()) {
      if (!usedMatrices.has(m.name)) this.warn(`matrix '${m.name}' is never used`, rangeOf(m.node, 'name'));
    }
  }
}

function kindOf(category: Category): SymbolKind {
  return category === 'selector' ? 'selector' : category === 'logits' ? 'logits' : 'variable';
}

function numberValue(x: AstNode): number | undefined {
  if (ast.isNumberLit(x)) return x.value;
  if (ast.isNegExpr(x) && x.op === '-' && ast.isNumberLit(x.arg)) return -x.arg.value;
  return undefined;
}

function unquote(s: string | undefined): string {
  // Error recovery can leave a property unset; the syntax error is reported already.
  if (s === undefined) return '';
  if (s.startsWith('"')) {
    try {
      return JSON.parse(s) as string;
    } catch {
      return s.slice(1, -1);
    }
  }
  return s;
}

function headerKeyword(item: ast.HeaderItem): string {
  return item.$cstNode?.text.split(/\s/)[0] ?? item.$type;
}

function circledNameRange(range: Range, ref: string): Range {
  // `\circled{a}`: the name sits before the closing brace.
  const endChar = range.end.character - 1;
  return { start: { line: range.end.line, character: endChar - ref.length }, end: { line: range.end.line, character: endChar } };
}

export function buildProgram(root: ast.RaspFile, options: BuildOptions = {}): BuildResult {
  return new Builder(root, options).run();
}

/**
 * buildProgram for a tree that may come from error recovery (missing properties): a crash there only means the
 * tree is incomplete, so an empty result is returned; the syntax errors say what is wrong.
 */
export function buildRecovered(root: ast.RaspFile, options: BuildOptions, syntaxErrors: boolean): BuildResult {
  if (!syntaxErrors) return buildProgram(root, options);
  try {
    return buildProgram(root, options);
  } catch {
    const partial: Program = {
      header: { vocab: [], special: {}, positions: 1, output: 'softmax' },
      statements: [],
      matrices: new Map(),
      mlps: new Map(),
    };
    return { partial, diagnostics: [], occurrences: [], statements: [], matrices: new Map(), annotationParts: [] };
  }
}
