// Langium LSP services for .rasp: validation through the program builder, and hover, completion, definition,
// references, rename, semantic tokens, formatting, code lens and inlay hints over the builder's symbol table.
import { DefaultDocumentValidator, DefaultLinker, GrammarUtils, inject, MultiMap, type AstNode, type AstNodeDescription, type LocalSymbols, type ScopeComputation, type LangiumDocument, type Module, type ValidationAcceptor, type ValidationChecks } from 'langium';
import {
  AbstractFormatter,
  AbstractSemanticTokenProvider,
  createDefaultModule,
  createDefaultSharedModule,
  DefaultCompletionProvider,
  Formatting,
  type CodeLensProvider,
  type CompletionProvider,
  type DefaultSharedModuleContext,
  type DefinitionProvider,
  type HoverProvider,
  type InlayHintProvider,
  type LangiumServices,
  type LangiumSharedServices,
  type PartialLangiumServices,
  type ReferencesProvider,
  type RenameProvider,
  type SemanticTokenAcceptor,
} from 'langium/lsp';
import {
  CompletionItemKind,
  InlayHintKind,
  LocationLink,
  SemanticTokenTypes,
  TextEdit,
  type CodeLens,
  type CompletionList,
  type CompletionParams,
  type DefinitionParams,
  type Hover,
  type HoverParams,
  type InlayHint,
  type InlayHintParams,
  type Location,
  type Range,
  type ReferenceParams,
  type RenameParams,
  type TextDocumentPositionParams,
  type WorkspaceEdit,
} from 'vscode-languageserver';
import { RaspGeneratedModule, RaspGeneratedSharedModule } from '../language/generated/module';
import * as ast from '../language/generated/ast';
import { PRIMITIVE_FUNCTIONS, EXPR_FUNCTIONS, vocabOf } from '../language/build';
import { analyze, analyzeWithSidecar, contains, documentPath, hasSyntaxErrors, occurrenceAt, occurrencesOf, statementAt } from './analysis';
import { builtinHover, headerHover, matrixHover, statementHover } from './hover';
import { ExampleRuns } from './runs';

export type RaspAddedServices = { rasp: { runs: ExampleRuns } };
export type RaspServices = LangiumServices & RaspAddedServices;

// ---- validation ---------------------------------------------------------------------------------------------
class RaspValidator {
  async checkFile(root: ast.RaspFile, accept: ValidationAcceptor): Promise<void> {
    const document = root.$document;
    // Builder diagnostics on a broken parse would mostly echo the syntax error.
    if (!document || hasSyntaxErrors(document)) return;
    const { result, sidecarError } = await analyzeWithSidecar(document);
    for (const d of result.diagnostics) accept(d.severity === 'info' ? 'info' : d.severity, d.message, { node: root, range: d.range });
    if (sidecarError) {
      const decl = root.header.find(ast.isWeightsDecl);
      accept('error', sidecarError, { node: decl ?? root, ...(decl ? { property: 'file' as const } : {}) } as never);
    }
  }
}

/** All checks live on the root (the program builder walks the tree itself): skip Langium's per-node walk. */
class RaspDocumentValidator extends DefaultDocumentValidator {
  protected override validateSingleNodeOptions(node: AstNode): { validateNode: boolean; validateChildren: boolean } {
    return { validateNode: ast.isRaspFile(node), validateChildren: false };
  }
}

function registerValidation(services: LangiumServices): void {
  const validator = new RaspValidator();
  const checks: ValidationChecks<ast.RaspAstType> = { RaspFile: (node, accept) => validator.checkFile(node, accept) };
  services.validation.ValidationRegistry.register(checks, validator);
}

// ---- hover --------------------------------------------------------------------------------------------------
class RaspHoverProvider implements HoverProvider {
  getHoverContent(document: LangiumDocument, params: HoverParams): Hover | undefined {
    const result = analyze(document);
    const occ = occurrenceAt(result, params.position);
    let value: string | undefined;
    const file = documentPath(document);
    if (occ?.kind === 'builtin') value = builtinHover(occ.name, result);
    else if (occ?.kind === 'matrix') {
      const m = result.matrices.get(occ.name);
      value = m ? matrixHover(m) : undefined;
    } else if (occ) {
      const info = result.statements.find((s) => s.statement.name === occ.name);
      if (info) value = statementHover({ info, result, ...(file ? { file } : {}) });
    }
    if (!value) {
      const info = statementAt(result, params.position);
      if (info) value = statementHover({ info, result, ...(file ? { file } : {}) });
    }
    if (!value) {
      const root = document.parseResult.value as ast.RaspFile;
      const item = root.header.find((h) => h.$cstNode && contains(h.$cstNode.range, params.position));
      if (item) value = headerHover(item.$type, result);
      const matrix = root.elements.find((e) => ast.isMatrixDecl(e) && e.$cstNode && contains(e.$cstNode.range, params.position));
      if (!value && matrix && ast.isMatrixDecl(matrix)) {
        const m = result.matrices.get(matrix.name);
        if (m) value = matrixHover(m);
      }
    }
    return value ? { contents: { kind: 'markdown', value } } : undefined;
  }
}

// ---- completion ---------------------------------------------------------------------------------------------
const SELECT_LABELS = ['uniform', 'first', 'last', 'k==q', 'k==q-1', 'k<q', 'k<=q', 'k%2==q%2', 'k==BOS', 'k==SEP', 'k==EOS', 'q', 'k', 'BOS', 'SEP', 'EOS', 'PAD'];
const PROJECT_LABELS = ['uniform', 'inp==out', 'out==EOS', 'out==BOS', 'inp', 'out', 'BOS', 'SEP', 'EOS', 'PAD'];

class RaspCompletionProvider extends DefaultCompletionProvider implements CompletionProvider {
  override async getCompletion(document: LangiumDocument, params: CompletionParams): Promise<CompletionList | undefined> {
    const base = (await super.getCompletion(document, params)) ?? { isIncomplete: false, items: [] };
    const result = analyze(document);
    const seen = new Set(base.items.map((i) => i.label));
    const add = (label: string, kind: CompletionItemKind, detail: string): void => {
      if (seen.has(label)) return;
      seen.add(label);
      base.items.push({ label, kind, detail });
    };
    const line = params.position.line;
    const text = document.textDocument.getText({ start: { line: Math.max(0, line - 2), character: 0 }, end: params.position });
    // Inside `op=(` / `special_op=(` only labels make sense: predicates over the sides and the primitives.
    const label = /op\s*=\s*\([^)]*$/.exec(text);
    if (label) {
      const isProject = /(project|proj_to_vocab)\s*\([^=]*=[^\n]*$/.test(text) && !/select\s*\([^\n]*$/.test(text);
      for (const l of isProject ? PROJECT_LABELS : SELECT_LABELS) add(l, CompletionItemKind.EnumMember, 'op label');
      for (const t of vocabOf(document.parseResult.value as ast.RaspFile)) if (!/^<.*>$/.test(t)) add(JSON.stringify(t), CompletionItemKind.Constant, 'token');
      return base;
    }
    add('token', CompletionItemKind.Variable, 'input token (one-hot)');
    add('pos', CompletionItemKind.Variable, 'position (one-hot)');
    // Variables in scope: those defined on earlier lines.
    for (const s of result.statements) {
      const r = s.node.$cstNode?.range;
      if (r && r.end.line < line) add(s.statement.name, s.category === 'selector' ? CompletionItemKind.Event : CompletionItemKind.Variable, `${s.statement.kind} (line ${s.statement.line})`);
    }
    for (const m of result.matrices.keys()) add(m, CompletionItemKind.Constant, 'matrix');
    for (const f of [...PRIMITIVE_FUNCTIONS, ...EXPR_FUNCTIONS]) add(f, CompletionItemKind.Function, 'element-wise function');
    return base;
  }
}

// ---- navigation ---------------------------------------------------------------------------------------------
class RaspDefinitionProvider implements DefinitionProvider {
  getDefinition(document: LangiumDocument, params: DefinitionParams): LocationLink[] | undefined {
    const result = analyze(document);
    const occ = occurrenceAt(result, params.position);
    if (!occ) return undefined;
    const def = occurrencesOf(result, occ).find((o) => o.def);
    return def ? [LocationLink.create(document.uri.toString(), def.range, def.range, occ.range)] : undefined;
  }
}

class RaspReferencesProvider implements ReferencesProvider {
  findReferences(document: LangiumDocument, params: ReferenceParams): Location[] {
    const result = analyze(document);
    const occ = occurrenceAt(result, params.position);
    if (!occ) return [];
    return occurrencesOf(result, occ)
      .filter((o) => params.context.includeDeclaration || !o.def)
      .map((o) => ({ uri: document.uri.toString(), range: o.range }));
  }
}

class RaspRenameProvider implements RenameProvider {
  prepareRename(document: LangiumDocument, params: TextDocumentPositionParams): Range | undefined {
    const occ = occurrenceAt(analyze(document), params.position);
    return occ && occ.kind !== 'builtin' ? occ.range : undefined;
  }

  rename(document: LangiumDocument, params: RenameParams): WorkspaceEdit | undefined {
    const result = analyze(document);
    const occ = occurrenceAt(result, params.position);
    if (!occ || occ.kind === 'builtin' || !/^[_A-Za-z]\w*$/.test(params.newName)) return undefined;
    const targets = occurrencesOf(result, occ);
    // An implicit op (select without op=, proj_to_vocab) reads the matrix named after its line: rename both.
    const paired = result.statements.some((s) => s.statement.name === occ.name && 'op' in s.statement && s.statement.op.kind === 'matrix' && s.statement.op.ref === occ.name && !('op' in s.node && s.node.op));
    if (paired) targets.push(...result.occurrences.filter((o) => o.name === occ.name && !targets.includes(o)));
    const edits = targets.map((o) => TextEdit.replace(o.range, params.newName));
    return { changes: { [document.uri.toString()]: edits } };
  }
}

// ---- semantic tokens ----------------------------------------------------------------------------------------
class RaspSemanticTokenProvider extends AbstractSemanticTokenProvider {
  protected highlightElement(node: AstNode, acceptor: SemanticTokenAcceptor): void | 'prune' {
    if (!ast.isRaspFile(node) || !node.$document) return;
    const result = analyze(node.$document);
    const type: Record<string, string> = {
      variable: SemanticTokenTypes.variable,
      selector: SemanticTokenTypes.event,
      logits: SemanticTokenTypes.property,
      matrix: SemanticTokenTypes.enumMember,
      builtin: SemanticTokenTypes.parameter,
    };
    for (const o of result.occurrences) {
      acceptor({ range: o.range, type: type[o.kind], ...(o.def ? { modifier: 'declaration' } : {}) } as never);
    }
    for (const p of result.annotationParts) {
      acceptor({ range: p.range, type: p.role === 'keyword' ? SemanticTokenTypes.decorator : p.role === 'number' ? SemanticTokenTypes.number : SemanticTokenTypes.string } as never);
    }
    for (const s of result.statements) {
      if (s.node.$type === 'MapStmt') {
        const e: AstNode = s.node.expr;
        if (ast.isCallExpr(e)) acceptor({ node: e, property: 'fn', type: SemanticTokenTypes.function });
      }
    }
    return 'prune';
  }
}

// ---- formatting ---------------------------------------------------------------------------------------------
class RaspFormatter extends AbstractFormatter {
  protected format(node: AstNode): void {
    if (ast.isRaspFile(node)) {
      const f = this.getNodeFormatter(node);
      // Each header line, matrix and statement starts a line of its own (blank lines are kept).
      f.properties('header', 'elements').prepend(Formatting.newLine({ allowMore: true }));
      return;
    }
    if (ast.isSelectStmt(node) || ast.isAggregateStmt(node) || ast.isProjectStmt(node) || ast.isPredictionStmt(node) || ast.isMapStmt(node) || ast.isMatrixDecl(node)) {
      const f = this.getNodeFormatter(node);
      const eq = f.keyword('=');
      eq.surround(Formatting.oneSpace());
      // Inside the call: no space after '(' or before ')' and ','; one space after ',' unless the line breaks.
      f.keywords('(').append(Formatting.noSpace());
      f.keywords(')').prepend(Formatting.noSpace());
      f.keywords(',').prepend(Formatting.noSpace());
      // A comma that ends a line (the paper's `,\n\t\tspecial_op=`, matrix rows) keeps its line break.
      const text = node.$cstNode?.root.fullText ?? '';
      const sameLine = GrammarUtils.findNodesForKeyword(node.$cstNode, ',').filter((c) => !/^[ \t]*(\r?\n|$)/.test(text.slice(c.end, c.end + 200)));
      if (sameLine.length > 0) f.cst(sameLine).append(Formatting.oneSpace());
      // Whitespace before a provenance annotation is left as written (the paper uses tabs there).
    }
  }
}

// ---- code lens and inlay hints -------------------------------------------------------------------------------
class RaspCodeLensProvider implements CodeLensProvider {
  provideCodeLens(document: LangiumDocument): CodeLens[] {
    const root = document.parseResult.value as ast.RaspFile;
    const pred = root.elements.find(ast.isPredictionStmt);
    const range = pred?.$cstNode?.range;
    if (!range) return [];
    return [{ range, command: { title: '▶ Run', command: 'rasp.runProgram', arguments: [document.uri.toString()] } }];
  }
}

class RaspInlayHintProvider implements InlayHintProvider {
  constructor(private readonly runs: ExampleRuns) {}

  async getInlayHints(document: LangiumDocument, params: InlayHintParams): Promise<InlayHint[]> {
    if (hasSyntaxErrors(document)) return [];
    const run = await this.runs.exampleRun(document);
    if (!run || 'error' in run) return [];
    const result = analyze(document);
    const hints: InlayHint[] = [];
    for (const s of result.statements) {
      const r = s.node.$cstNode?.range;
      if (!r || !contains(params.range, r.end)) continue;
      const text = run.summaries.get(s.statement.name);
      if (text === undefined) continue;
      // After the statement text, before any annotation.
      hints.push({ position: lastTokenEnd(s.node) ?? r.end, label: ` ${text}`, kind: InlayHintKind.Type, paddingLeft: true, tooltip: `values for the example input: ${run.input}` });
    }
    return hints;
  }
}

/** End of the statement text without its trailing annotation. */
function lastTokenEnd(node: ast.Statement): Range['end'] | undefined {
  const cst = node.$cstNode;
  if (!cst) return undefined;
  const annotation = GrammarUtils.findNodeForProperty(cst, 'annotation');
  if (!annotation) return cst.range.end;
  const lines = cst.text.slice(0, annotation.offset - cst.offset).trimEnd().split('\n');
  const last = lines[lines.length - 1];
  return { line: cst.range.start.line + lines.length - 1, character: (lines.length === 1 ? cst.range.start.character : 0) + last.length };
}

// ---- scopes -------------------------------------------------------------------------------------------------
/**
 * The language has no Langium cross-references (names resolve in the program builder, in statement order), so
 * Langium's per-document symbol export and local scopes would only cost time on long programs.
 */
class NoScopeComputation implements ScopeComputation {
  async collectExportedSymbols(): Promise<AstNodeDescription[]> {
    return [];
  }

  async collectLocalSymbols(): Promise<LocalSymbols> {
    return new MultiMap<AstNode, AstNodeDescription>();
  }
}

/** No cross-references in the grammar, so linking has nothing to do; skipping its tree walk saves time. */
class NoLinker extends DefaultLinker {
  override async link(): Promise<void> {
    // intentionally empty: names are resolved by the program builder
  }
}

// ---- module -------------------------------------------------------------------------------------------------
export const RaspLspModule: Module<RaspServices, PartialLangiumServices & RaspAddedServices> = {
  rasp: { runs: () => new ExampleRuns() },
  references: { ScopeComputation: () => new NoScopeComputation(), Linker: (s) => new NoLinker(s) },
  validation: { DocumentValidator: (s) => new RaspDocumentValidator(s) },
  lsp: {
    HoverProvider: () => new RaspHoverProvider(),
    CompletionProvider: (s) => new RaspCompletionProvider(s),
    DefinitionProvider: () => new RaspDefinitionProvider(),
    ReferencesProvider: () => new RaspReferencesProvider(),
    RenameProvider: () => new RaspRenameProvider(),
    SemanticTokenProvider: (s) => new RaspSemanticTokenProvider(s),
    Formatter: () => new RaspFormatter(),
    CodeLensProvider: () => new RaspCodeLensProvider(),
    InlayHintProvider: (s) => new RaspInlayHintProvider(s.rasp.runs),
  },
};

export function createRaspServices(context: DefaultSharedModuleContext): { shared: LangiumSharedServices; Rasp: RaspServices } {
  const shared = inject(createDefaultSharedModule(context), RaspGeneratedSharedModule);
  const Rasp = inject(createDefaultModule({ shared }), RaspGeneratedModule, RaspLspModule);
  shared.ServiceRegistry.register(Rasp);
  registerValidation(Rasp);
  return { shared, Rasp };
}
