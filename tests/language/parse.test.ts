// Parsing every statement form, the paper programs as printed, and validation messages with their ranges,
// through parseProgram (the CLI's path) and through Langium's validation (the language server's path).
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EmptyFileSystem } from 'langium';
import { validationHelper } from 'langium/test';
import { parseProgram, type ProgramDiagnostic } from '../../server/src/language/load';
import { createRaspServices } from '../../server/src/lsp/services';
import type { Program } from '../../server/src/program/types';
import { runProgram } from '../../server/src/interpreter/index';

const root = join(__dirname, '..', '..');
const HEADER = 'vocab [a, b, c, <bos>, <sep>, <eos>, <pad>]\npositions 32\n';

async function ok(body: string, header = HEADER): Promise<Program> {
  const { program, diagnostics } = await parseProgram(header + body);
  expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  expect(program).toBeDefined();
  return program!;
}

async function errors(body: string, header = HEADER): Promise<ProgramDiagnostic[]> {
  const { program, diagnostics } = await parseProgram(header + body);
  expect(program).toBeUndefined();
  return diagnostics.filter((d) => d.severity === 'error');
}

describe('examples', () => {
  for (const name of ['majority', 'induction', 'dyck']) {
    it(`${name}.rasp parses without errors or warnings`, async () => {
      const { program, diagnostics } = await parseProgram(readFileSync(join(root, 'examples', `${name}.rasp`), 'utf8'));
      expect(diagnostics).toEqual([]);
      expect(program!.statements.at(-1)!.kind).toBe('prediction');
    });
  }

  it('the loaded examples run: majority picks the mode, induction copies the token after the earlier match', async () => {
    const load = async (n: string): Promise<Program> => (await parseProgram(readFileSync(join(root, 'examples', `${n}.rasp`), 'utf8'))).program!;
    const majority = await load('majority');
    expect(runProgram(majority, '<bos> 1 0 1 1 <sep>').prediction.at(-1)).toBe('1');
    expect(runProgram(majority, '<bos> 0 0 1 <sep>').prediction.at(-1)).toBe('0');
    const induction = await load('induction');
    expect(runProgram(induction, '<bos> a c b d <sep> a c').prediction.slice(-2)).toEqual(['c', 'b']);
    expect(runProgram(induction, '<bos> d b a c <sep> d b a').prediction.slice(-3)).toEqual(['b', 'a', 'c']);
  });

  it('majority has the bin_majority vocabulary and provenance from the paper comment', async () => {
    const { program } = await parseProgram(readFileSync(join(root, 'examples', 'majority.rasp'), 'utf8'));
    expect(program!.header.vocab).toEqual(['0', '1', '<bos>', '<sep>', '<eos>', '<pad>']);
    expect(program!.header.special).toEqual({ bos: 2, sep: 3, eos: 4, pad: 5 });
    expect(program!.header.positions).toBe(154);
    expect(program!.statements[0].provenance).toEqual({ layer: 0, head: 0, mlp: false, paths: {} });
  });
});

describe('statement forms of d-rasp.md 2.2', () => {
  it('pair and key-only selects with predicates, primitives, special ops and matrices', async () => {
    const p = await ok(
      [
        'matrix M = [[1, 0, 0, 0, 0, 0, 0]]',
        'matrix N[7, 7] = [' + Array.from({ length: 7 }, (_, i) => `[${Array.from({ length: 7 }, (_, j) => (i === j ? 1 : 0)).join(',')}]`).join(',') + ']',
        's1 = select(q=pos, k=pos, op=(k==q-1))\t# layer 0 head 0',
        's2 = select(k=token, op=(k==BOS))',
        's3 = select(q=token, k=token, op=(uniform selection),\n\t\tspecial_op=(k==BOS))\t# layer 0 head 1',
        's4 = select(k=token, op=\\circled{M})',
        's5 = select(q=token, k=token, op=N)',
        's6 = select(q=pos, k=pos, op=(k is first))',
        's7 = select(q=pos, k=pos, op=(last), scale=100)',
        's8 = select(q=pos, k=pos, op=(k%2==q%2))',
        'a1 = aggregate(s=s1+s2+s3+s4+s5+s6+s7+s8, v=token) \t  # layer 0 head 0',
        'a2 = aggregate(s=[], v=pos)',
        'logits1 = project(inp=a1, op=(inp==out))',
        'logits2 = project(inp=a2, op=(out==EOS))',
        'prediction = softmax(logits1+\n\t\t\tlogits2)',
      ].join('\n'),
    );
    const byName = new Map(p.statements.map((s) => [s.name, s]));
    expect(byName.get('s1')).toMatchObject({ kind: 'select', q: 'pos', k: 'pos', op: { kind: 'predicate', label: 'k==q-1', scale: 1e4 } });
    expect(byName.get('s2')).toMatchObject({ kind: 'select', k: 'token', op: { kind: 'predicate', expr: { kind: 'binary', op: '==', right: { kind: 'special', name: 'BOS' } } } });
    expect(byName.get('s2')).not.toHaveProperty('q');
    expect(byName.get('s3')).toMatchObject({ op: { kind: 'primitive', name: 'uniform', label: 'uniform selection' }, specialOp: { kind: 'predicate', label: 'k==BOS' } });
    expect(byName.get('s4')).toMatchObject({ op: { kind: 'matrix', ref: 'M' } });
    expect(byName.get('s5')).toMatchObject({ op: { kind: 'matrix', ref: 'N' } });
    expect(byName.get('s6')).toMatchObject({ op: { kind: 'primitive', name: 'first', label: 'k is first' } });
    expect(byName.get('s7')).toMatchObject({ op: { kind: 'primitive', name: 'last', scale: 100 } });
    expect(byName.get('a2')).toMatchObject({ kind: 'aggregate', selectors: [], v: 'pos' });
    expect(byName.get('prediction')).toMatchObject({ kind: 'prediction', fn: 'softmax', terms: ['logits1', 'logits2'] });
    expect(p.matrices.get('N')!.rows).toBe(7);
  });

  it('chained comparisons read literally (the paper\'s k%2==q%2==0)', async () => {
    const p = await ok('s1 = select(q=pos, k=pos, op=(k%2==q%2==0))\na1 = aggregate(s=s1, v=token)\nl = project(inp=a1, op=(inp==out))\nprediction = softmax(l)');
    const op = p.statements[0].kind === 'select' ? p.statements[0].op : undefined;
    expect(op).toMatchObject({ kind: 'predicate', expr: { kind: 'binary', op: '&&', right: { kind: 'binary', op: '==', right: { kind: 'num', value: 0 } } } });
  });

  it('element-wise primitives, opaque MLP names and hand-written maps', async () => {
    const p = await ok(
      [
        'a1 = aggregate(s=[], v=token)',
        'hardened_a1 = harden(a1) \t  # layer 0 mlp input=attn_output-0-0-wte neurons=12:0.41,7',
        'sharpened_a1 = sharpen(a1, 3)',
        'is_3_exists_a1 = is_3_exists(a1)',
        'is_pure_a1 = is_pure(a1, 0.8)',
        'is_uniform_a1 = is_uniform(a1)',
        'bal = is_01_balance(a1, p=0.05, c=0)',
        'diff_01_a1 = diff_01(a1)',
        'depth = count_diff_01(a1, scale=0.875)',
        'depth2 = count_diff_0_1(a1, by=2)',
        'e = erase(a1, hardened_a1)',
        'a1_x_a2 = Cartesian_product(hardened_a1, is_3_exists_a1)',
        'd = a1["a"] - a1["b"]',
        'open = d > 0 && abs(d) < 1',
        'l1 = project(inp=d, op=(inp==out))',
        'l2 = project(inp=open, op=(inp==out))',
        'l3 = project(inp=sharpened_a1, op=(inp==out))',
        'l4 = project(inp=is_pure_a1, op=(uniform))',
        'l5 = project(inp=is_uniform_a1, op=(uniform))',
        'l6 = project(inp=bal, op=(uniform))',
        'l7 = project(inp=diff_01_a1, op=(uniform))',
        'l8 = project(inp=e, op=(uniform))',
        'l11 = project(inp=depth, op=(uniform))',
        'l12 = project(inp=depth2, op=(uniform))',
        'l9 = project(inp=a1_x_a2, op=(uniform))',
        'l10 = project(op=(out==EOS))',
        'prediction = softmax(l1+l2+l3+l4+l5+l6+l7+l8+l9+l10+l11+l12)',
      ].join('\n'),
    );
    const fn = (n: string): unknown => {
      const s = p.statements.find((x) => x.name === n)!;
      return s.kind === 'elementwise' ? s.fn : undefined;
    };
    expect(fn('hardened_a1')).toEqual({ name: 'harden' });
    expect(fn('sharpened_a1')).toEqual({ name: 'sharpen', power: 3 });
    expect(fn('is_3_exists_a1')).toEqual({ name: 'exists', index: 3 });
    expect(fn('is_pure_a1')).toEqual({ name: 'forall', threshold: 0.8 });
    expect(fn('is_uniform_a1')).toEqual({ name: 'equal', indices: [0, 1, 2] });
    expect(fn('bal')).toEqual({ name: 'balance', which: '01', p: 0.05, c: 0 });
    expect(fn('diff_01_a1')).toEqual({ name: 'diff', i: 0, j: 1 });
    // by= defaults to the header's BOS
    expect(fn('depth')).toEqual({ name: 'count_diff', i: 0, j: 1, by: p.header.special.bos, scale: 0.875 });
    expect(fn('depth2')).toEqual({ name: 'count_diff', i: 0, j: 1, by: 2, scale: 1 });
    expect(fn('e')).toEqual({ name: 'erase' });
    expect(fn('a1_x_a2')).toEqual({ name: 'cartesian' });
    expect(fn('d')).toMatchObject({ name: 'expr', expr: { kind: 'binary', op: '-', left: { kind: 'index', target: 'a1', key: { kind: 'token', text: 'a' } } } });
    expect(p.statements.find((s) => s.name === 'hardened_a1')!.provenance).toEqual({
      layer: 0,
      head: null,
      mlp: true,
      paths: { input: 'attn_output-0-0-wte' },
      neurons: [{ index: 12, score: 0.41 }, { index: 7 }],
    });
  });

  it('opaque MLP lines need a weights file; proj_to_vocab reads the matrix named after the line', async () => {
    const header = `${HEADER}weights "w.safetensors"\n`;
    const { program, diagnostics } = await parseProgram(
      `${header}matrix logits1[7, 7] from weights\na1 = aggregate(s=[], v=token)\nnew_a1 = element_wise_op(a1) \t  # layer 0 mlp\nm1 = mlp(a1+new_a1)\nlogits1 = proj_to_vocab(a1)\nlogits2 = not_converted_proj_to_vocab(m1)\nlogits3 = proj_to_vocab(bias)\nprediction = softmax(logits1+logits2+logits3)`,
    );
    // Without the sidecar loaded, logits2/logits3 name matrices that are not declared.
    expect(program).toBeUndefined();
    const msgs = diagnostics.map((d) => `${d.line}:${d.message}`);
    expect(msgs.some((m) => m.startsWith('9:') && m.includes('matrix named after the line'))).toBe(true);
  });
});

describe('the paper programs (d-rasp.md 2.4) as printed', () => {
  it('parse apart from the header', async () => {
    const text = 's1 = select(k=token, op=\\circled{a})\na1 = aggregate(s=s1, v=token) \t  # layer 0 head 0\ndiff_01_a1 = diff_01(a1) \t  # layer 0 mlp\nlogits1 = project(inp=diff_01_a1, op=\\circled{b})\nlogits2 = project(inp=token, op=(inp==out),\n\t\tspecial_op=(out==EOS))\nlogits3 = project(op=\\circled{c})\nprediction = softmax(logits1+\n\t\t\tlogits2+\n\t\t\tlogits3)\n';
    const { diagnostics } = await parseProgram(text);
    // No syntax errors: only the missing header and the undeclared matrices are reported.
    for (const d of diagnostics) expect(d.message).toMatch(/header|matrix '[abc]' is not declared/);
  });
});

describe('validation messages and ranges', () => {
  const cases: [string, string, RegExp, number, number][] = [
    ['undefined name', 'a1 = aggregate(s=[], v=tok)\nl = project(inp=a1, op=(inp==out))\nprediction = softmax(l)', /'tok' is not defined/, 3, 24],
    ['duplicate name', 'a1 = aggregate(s=[], v=token)\na1 = aggregate(s=[], v=pos)\nl = project(inp=a1, op=(inp==out))\nprediction = softmax(l)', /'a1' is already defined on line 3/, 4, 1],
    ['selector used as a value', 's1 = select(q=pos, k=pos, op=(k<q))\nl = project(inp=s1, op=(inp==out))\nprediction = softmax(l)', /input 's1' must be a variable, but it is a selector/, 4, 17],
    ['value used as a selector', 'a1 = aggregate(s=[], v=token)\na2 = aggregate(s=a1, v=token)\nl = project(inp=a2, op=(inp==out))\nprediction = softmax(l)', /selector 'a1' must be a selector, but it is a variable/, 4, 18],
    ['missing prediction', 'a1 = aggregate(s=[], v=token)', /no `prediction/, 3, 30],
    ['unknown primitive label', 's1 = select(q=pos, k=pos, op=(foo))\na1 = aggregate(s=s1, v=token)\nl = project(inp=a1, op=(inp==out))\nprediction = softmax(l)', /unknown name 'foo' in the label/, 3, 31],
    ['BOS on a position basis', 's1 = select(q=pos, k=pos, op=(k==BOS))\na1 = aggregate(s=s1, v=token)\nl = project(inp=a1, op=(inp==out))\nprediction = softmax(l)', /k is in a pos basis; comparing it with the token BOS/, 3, 31],
    ['q in a key-only select', 's1 = select(k=pos, op=(k<q))\na1 = aggregate(s=s1, v=token)\nl = project(inp=a1, op=(inp==out))\nprediction = softmax(l)', /a key-only select has no query q/, 3, 26],
    ['matrix shape vs bases', 'matrix M = [[1, 2], [3, 4]]\ns1 = select(q=token, k=token, op=M)\na1 = aggregate(s=s1, v=token)\nl = project(inp=a1, op=(inp==out))\nprediction = softmax(l)', /matrix M is 2x2, expected 7x7/, 4, 34],
    ['ragged matrix', 'matrix M = [[1, 2], [3]]\nl = project(op=M)\nprediction = softmax(l)', /row 1 of matrix 'M' has 1 entries/, 3, 21],
    ['use before definition', 'l = project(inp=a1, op=(inp==out))\na1 = aggregate(s=[], v=token)\nprediction = softmax(l)', /'a1' is used before it is defined \(line 4\)/, 3, 17],
    ['prediction of a non-logits variable', 'a1 = aggregate(s=[], v=token)\nprediction = softmax(a1)', /term 'a1' must be a logits/, 4, 22],
    ['token literal not in the vocabulary', 's1 = select(q=token, k=token, op=(k=="z"))\na1 = aggregate(s=s1, v=token)\nl = project(inp=a1, op=(inp==out))\nprediction = softmax(l)', /"z" is not a token of the vocabulary/, 3, 38],
    ['index key not in the basis', 'a1 = aggregate(s=[], v=token)\nd = a1["q"]\nl = project(inp=d, op=(inp==out))\nprediction = softmax(l)', /'a1' has no entry "q"/, 4, 5],
    ['unknown function', 'a1 = aggregate(s=[], v=token)\nd = frob(a1)\nl = project(inp=d, op=(inp==out))\nprediction = softmax(l)', /unknown function 'frob'/, 4, 5],
    ['count_diff scale not positive', 'a1 = aggregate(s=[], v=token)\nd = count_diff_01(a1, scale=0)\nl = project(inp=d, op=(inp==out))\nprediction = softmax(l)', /count_diff scale must be a positive number, got 0/, 4, 5],
    ['count_diff reference outside the basis', 'a1 = aggregate(s=[], v=token)\nd = count_diff_01(a1, by=99)\nl = project(inp=d, op=(inp==out))\nprediction = softmax(l)', /count_diff index 99 is outside the input basis/, 4, 5],
  ];
  for (const [title, body, message, line, column] of cases) {
    it(title, async () => {
      const errs = await errors(body);
      const hit = errs.find((d) => message.test(d.message));
      expect(hit, JSON.stringify(errs)).toBeDefined();
      expect([hit!.line, hit!.column]).toEqual([line, column]);
    });
  }

  it('missing header lines and a syntax error are reported', async () => {
    const { diagnostics } = await parseProgram('a1 = aggregate(s=[], v=token)\nprediction = softmax(a1)');
    expect(diagnostics.map((d) => d.message).join('\n')).toMatch(/no `vocab/);
    const syntax = await parseProgram(`${HEADER}a1 = aggregate(s=[] v=token)\n`);
    expect(syntax.diagnostics[0]).toMatchObject({ severity: 'error', line: 3, column: 21 });
  });

  it('unused statements are warnings', async () => {
    const { program, diagnostics } = await parseProgram(`${HEADER}a1 = aggregate(s=[], v=token)\na2 = aggregate(s=[], v=pos)\nl = project(inp=a1, op=(inp==out))\nprediction = softmax(l)`);
    expect(program).toBeDefined();
    expect(diagnostics).toEqual([{ severity: 'warning', message: "'a2' does not contribute to the prediction", line: 4, column: 1, endLine: 4, endColumn: 3 }]);
  });

  it('annotation problems point inside the annotation', async () => {
    const { diagnostics } = await parseProgram(`${HEADER}a1 = aggregate(s=[], v=token) # layer 0 head 0 colour=red\nl = project(inp=a1, op=(inp==out))\nprediction = softmax(l)`);
    expect(diagnostics).toContainEqual(expect.objectContaining({ severity: 'warning', line: 3, column: 48, message: expect.stringMatching(/unknown annotation field 'colour'/) }));
  });

  it('prose comments about layers stay comments; a detached annotation is a warning, not a syntax error', async () => {
    const prose = await parseProgram(`${HEADER}# layer norm is linear here (LLN-A)\n# layers 0-1 are attention only\na1 = aggregate(s=[], v=token)\nl = project(inp=a1, op=(inp==out))\nprediction = softmax(l)`);
    expect(prose.diagnostics).toEqual([]);
    const { program, diagnostics } = await parseProgram(`${HEADER}# layer 0 head 0\na1 = aggregate(s=[], v=token)\nl = project(inp=a1, op=(inp==out))\nprediction = softmax(l)`);
    expect(program).toBeDefined();
    expect(diagnostics).toEqual([expect.objectContaining({ severity: 'warning', line: 3, column: 1, message: expect.stringMatching(/not attached to a statement/) })]);
  });

  it('an annotation on a line of its own is flagged', async () => {
    const { diagnostics } = await parseProgram(`${HEADER}a1 = aggregate(s=[], v=token)\n# layer 0 head 0\nl = project(inp=a1, op=(inp==out))\nprediction = softmax(l)`);
    expect(diagnostics).toContainEqual(expect.objectContaining({ severity: 'warning', line: 4, column: 1, message: expect.stringMatching(/belongs to 'a1' on the line above/) }));
  });

  it('the language server reports the same diagnostics through Langium validation', async () => {
    const { Rasp } = createRaspServices({ ...EmptyFileSystem });
    const validate = validationHelper(Rasp);
    const result = await validate(`${HEADER}a1 = aggregate(s=[], v=tok)\nl = project(inp=a1, op=(inp==out))\nprediction = softmax(l)`);
    const d = result.diagnostics.find((x) => String(x.message).includes("'tok' is not defined"));
    expect(d?.range).toEqual({ start: { line: 2, character: 23 }, end: { line: 2, character: 26 } });
  });
});
