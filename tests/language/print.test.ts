// Printer round trips: examples, a fast-check property over generated programs, and the sidecar path
// (writeProgramFiles -> loadProgramFile) with large matrices and opaque MLP weights.
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadProgramFile, parseProgramSync } from '../../server/src/language/load';
import { exprToString, printProgram, writeProgramFiles } from '../../server/src/program/print';
import type { Expr, Matrix, OpaqueMlp, Op, Program, Provenance, Statement } from '../../server/src/program/types';

const root = join(__dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'rasp-print-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Comparable view: line numbers dropped, predicate labels normalised to the printed form, matrices as arrays. */
function normal(p: Program): unknown {
  const op = (o: Op | undefined): unknown => (o?.kind === 'predicate' ? { ...o, label: exprToString(o.expr) } : o);
  return {
    header: p.header,
    statements: p.statements.map((s) => {
      const { line: _line, ...rest } = s;
      if (s.kind === 'select' || s.kind === 'project') return { ...rest, op: op(s.op), ...(s.specialOp ? { specialOp: op(s.specialOp) } : {}) };
      return rest;
    }),
    matrices: [...p.matrices].map(([k, m]) => [k, m.rows, m.cols, Array.from(m.data, (v) => Math.fround(v) + 0)]),
  };
}

describe('examples round-trip', () => {
  for (const name of ['majority', 'induction', 'dyck']) {
    it(name, () => {
      const a = parseProgramSync(readFileSync(join(root, 'examples', `${name}.rasp`), 'utf8')).program!;
      const text = printProgram(a);
      const b = parseProgramSync(text);
      expect(b.diagnostics).toEqual([]);
      expect(normal(b.program!)).toEqual(normal(a));
      expect(printProgram(b.program!)).toBe(text);
    });
  }
});

// ---- generated programs -----------------------------------------------------------------------------------
const PAIR_PREDICATES: Expr[] = [
  { kind: 'binary', op: '==', left: { kind: 'ref', name: 'k' }, right: { kind: 'binary', op: '-', left: { kind: 'ref', name: 'q' }, right: { kind: 'num', value: 1 } } },
  { kind: 'binary', op: '<', left: { kind: 'ref', name: 'k' }, right: { kind: 'ref', name: 'q' } },
  { kind: 'binary', op: '==', left: { kind: 'binary', op: '%', left: { kind: 'ref', name: 'k' }, right: { kind: 'num', value: 2 } }, right: { kind: 'binary', op: '%', left: { kind: 'ref', name: 'q' }, right: { kind: 'num', value: 2 } } },
  { kind: 'binary', op: '||', left: { kind: 'binary', op: '<=', left: { kind: 'ref', name: 'k' }, right: { kind: 'num', value: -2 } }, right: { kind: 'unary', op: '!', arg: { kind: 'binary', op: '>', left: { kind: 'ref', name: 'q' }, right: { kind: 'num', value: 0.5 } } } },
];

function build(choices: number[], seedMatrix: number[]): Program {
  let c = 0;
  const pick = (n: number): number => (n <= 1 ? 0 : choices[c++ % choices.length] % n);
  const nTokens = 2 + pick(4);
  const vocab = [...Array.from({ length: nTokens }, (_, i) => ['a', 'b', 'x1', '7', 'two words', 'q'][i]), '<bos>', '<sep>', '<eos>', '<pad>'];
  const V = vocab.length;
  const P = 4 + pick(20);
  const values: { name: string; size: number; token: boolean }[] = [
    { name: 'token', size: V, token: true },
    { name: 'pos', size: P, token: false },
  ];
  const selectors: string[] = [];
  const logits: string[] = [];
  const statements: Statement[] = [];
  const matrices = new Map<string, Matrix>();
  let m = 0;
  const matrix = (rows: number, cols: number): string => {
    const name = pick(2) === 0 ? String.fromCharCode(97 + (m % 26)) + (m >= 26 ? String(m) : '') : `M${m}`;
    m++;
    const data = new Float64Array(rows * cols);
    for (let i = 0; i < data.length; i++) data[i] = seedMatrix[(i + m) % seedMatrix.length];
    matrices.set(name, { rows, cols, data });
    return name;
  };
  const prov = (head: boolean): Provenance | undefined => {
    if (pick(2) === 0) return undefined;
    return head
      ? { layer: pick(4), head: pick(4), mlp: false, paths: pick(2) ? { q: 'wte', k: 'attn_output-0-1-wpe' } : {}, ...(pick(2) ? { dims: [0, 3] } : {}) }
      : { layer: pick(4), head: null, mlp: true, paths: { input: 'attn_output-0-0-wte' }, ...(pick(2) ? { neurons: [{ index: 5, score: 0.25 }, { index: 9 }] } : {}) };
  };
  const steps = 2 + pick(12);
  for (let i = 0; i < steps; i++) {
    const kind = pick(4);
    if (kind === 0) {
      const pair = pick(2) === 0;
      const q = values[pick(values.length)];
      const k = values[pick(values.length)];
      let op: Op;
      const t = pick(3);
      if (t === 0 && pair) op = { kind: 'predicate', label: '', expr: PAIR_PREDICATES[pick(PAIR_PREDICATES.length)], scale: pick(2) ? 1e4 : 100 };
      else if (t === 1 || (t === 0 && !pair)) {
        const name = (['uniform', 'first', 'last'] as const)[pick(3)];
        op = { kind: 'primitive', name, label: name, scale: 1e4 };
      }
      else op = { kind: 'matrix', ref: matrix(pair ? q.size : 1, k.size) };
      const p = prov(true);
      const name = `s${i}`;
      statements.push({ kind: 'select', name, line: 0, ...(pair ? { q: q.name } : {}), k: k.name, op, ...(p ? { provenance: p } : {}) });
      selectors.push(name);
    } else if (kind === 1) {
      const v = values[pick(values.length)];
      const sels = selectors.filter(() => pick(2) === 0);
      const name = `a${i}`;
      statements.push({ kind: 'aggregate', name, line: 0, selectors: sels, v: v.name });
      values.push({ name, size: v.size, token: v.token });
    } else if (kind === 2) {
      const v = values[pick(values.length)];
      const name = `e${i}`;
      const f = pick(5);
      if (f === 4 && v.size >= 3) {
        statements.push({ kind: 'elementwise', name, line: 0, fn: { name: 'count_diff', i: 0, j: 1, by: 2, scale: 0.75 }, inputs: [v.name] });
        values.push({ name, size: 10, token: false });
      } else if (f === 0 || (f === 1 && v.size < 2)) {
        statements.push({ kind: 'elementwise', name, line: 0, fn: { name: 'harden' }, inputs: [v.name], ...(prov(false) ? { provenance: prov(false)! } : {}) });
        values.push({ name, size: v.size, token: false });
      } else if (f === 1 && v.size >= 2) {
        statements.push({ kind: 'elementwise', name, line: 0, fn: { name: 'diff', i: 0, j: 1 }, inputs: [v.name] });
        values.push({ name, size: 12, token: false });
      } else if (f === 2) {
        statements.push({ kind: 'elementwise', name, line: 0, fn: { name: 'exists', index: pick(v.size) }, inputs: [v.name] });
        values.push({ name, size: 2, token: false });
      } else {
        const expr: Expr = { kind: 'binary', op: '-', left: { kind: 'index', target: v.name, key: { kind: 'num', value: pick(v.size) } }, right: { kind: 'binary', op: '*', left: { kind: 'num', value: 0.5 }, right: { kind: 'call', fn: 'abs', args: [{ kind: 'index', target: v.name, key: { kind: 'num', value: 0 } }] } } };
        statements.push({ kind: 'elementwise', name, line: 0, fn: { name: 'expr', expr }, inputs: [v.name] });
        values.push({ name, size: 1, token: false });
      }
    } else {
      const bias = pick(3) === 0;
      const v = values[pick(values.length)];
      const name = `logits${i}`;
      const t = pick(3);
      let op: Op;
      if (t === 0 && !bias) op = { kind: 'predicate', label: '', expr: { kind: 'binary', op: '==', left: { kind: 'ref', name: 'inp' }, right: { kind: 'ref', name: 'out' } }, scale: 1e4 };
      else if (t === 1) op = { kind: 'predicate', label: '', expr: { kind: 'binary', op: '==', left: { kind: 'ref', name: 'out' }, right: { kind: 'special', name: 'EOS' } }, scale: 1e4 };
      else op = { kind: 'matrix', ref: matrix(bias ? 1 : v.size, V) };
      const special: Op | undefined = !bias && v.token && pick(2) === 0 ? { kind: 'predicate', label: '', expr: { kind: 'binary', op: '==', left: { kind: 'ref', name: 'out' }, right: { kind: 'token', text: vocab[0] } }, scale: 1e4 } : undefined;
      statements.push({ kind: 'project', name, line: 0, ...(bias ? {} : { inp: v.name }), op, ...(special ? { specialOp: special } : {}) });
      logits.push(name);
    }
  }
  if (logits.length === 0) {
    statements.push({ kind: 'project', name: 'logitsZ', line: 0, inp: 'token', op: { kind: 'predicate', label: '', expr: { kind: 'binary', op: '==', left: { kind: 'ref', name: 'inp' }, right: { kind: 'ref', name: 'out' } }, scale: 1e4 } });
    logits.push('logitsZ');
  }
  statements.push({ kind: 'prediction', name: 'prediction', line: 0, fn: pick(2) ? 'softmax' : 'sigmoid', terms: logits });
  const fnOut = (statements.at(-1) as { fn: 'softmax' | 'sigmoid' }).fn;
  return {
    header: {
      ...(pick(2) ? { name: 'gen "quoted"' } : {}),
      vocab,
      special: { bos: nTokens, sep: nTokens + 1, eos: nTokens + 2, pad: nTokens + 3 },
      positions: P,
      output: fnOut,
      ...(pick(2) ? { dHead: 16 } : {}),
      ...(pick(2) ? { task: 'bin_majority', model: { path: '../models/x', sha256: 'a'.repeat(64) }, example: '<bos> a <sep>' } : {}),
    },
    statements,
    matrices,
    mlps: new Map(),
  };
}

describe('property: parse(print(p)) == p', () => {
  it('holds for generated programs', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(1000), { minLength: 10, maxLength: 60 }), fc.array(fc.double({ min: -1e3, max: 1e3, noNaN: true }), { minLength: 1, maxLength: 8 }), (choices, values) => {
        const p = build(choices, values);
        const text = printProgram(p);
        const back = parseProgramSync(text);
        const errors = back.diagnostics.filter((d) => d.severity === 'error');
        expect(errors, text).toEqual([]);
        expect(normal(back.program!)).toEqual(normal(p));
      }),
      { numRuns: 300 },
    );
  });
});

// ---- sidecar ------------------------------------------------------------------------------------------------
function mlpWeights(inputSize: number, d: number): OpaqueMlp {
  const mat = (rows: number, cols: number, s: number): Matrix => ({ rows, cols, data: Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * s)) });
  return {
    inputEmbeddings: [mat(inputSize, d, 0.3)],
    lnGamma: Float32Array.from({ length: d }, (_, i) => 1 + i / 10),
    lnVariance: 0.5,
    lnEps: 1e-5,
    fcW: mat(d, 4 * d, 0.7),
    fcB: new Float32Array(4 * d).fill(0.1),
    projW: mat(4 * d, d, 1.1),
    projB: new Float32Array(d).fill(-0.2),
  };
}

describe('names that cannot be printed', () => {
  it('are refused with a clear message instead of printing text that does not read back', () => {
    const p = parseProgramSync(readFileSync(join(root, 'examples', 'majority.rasp'), 'utf8')).program!;
    const bad = { ...p, statements: p.statements.map((s) => (s.name === 'a1' ? { ...s, name: 'a-1' } : s)) };
    expect(() => printProgram(bad)).toThrow(/cannot print statement name 'a-1'/);
    expect(() => printProgram({ ...p, matrices: new Map([['vocab', { rows: 1, cols: 6, data: new Float64Array(6) }]]) })).toThrow(/matrix name 'vocab'/);
  });
});

describe('writeProgramFiles and loadProgramFile', () => {
  const vocab = ['a', 'b', '<bos>', '<sep>', '<eos>', '<pad>'];
  const big: Matrix = { rows: 20, cols: 20, data: Float32Array.from({ length: 400 }, (_, i) => (i % 7) - 3.25) };
  const program: Program = {
    header: { vocab, special: { bos: 2, sep: 3, eos: 4, pad: 5 }, positions: 20, output: 'softmax', example: '<bos> a b' },
    statements: [
      { kind: 'select', name: 's1', line: 0, q: 'pos', k: 'pos', op: { kind: 'matrix', ref: 'B' } },
      { kind: 'aggregate', name: 'a1', line: 0, selectors: ['s1'], v: 'token' },
      { kind: 'elementwise', name: 'new_a1', line: 0, fn: { name: 'mlp', ref: 'new_a1' }, inputs: ['a1'], provenance: { layer: 0, head: null, mlp: true, paths: { input: 'attn_output-0-0-wte' } } },
      { kind: 'project', name: 'logits1', line: 0, inp: 'new_a1', op: { kind: 'matrix', ref: 'R' } },
      { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['logits1'] },
    ],
    matrices: new Map([
      ['B', big],
      ['R', { rows: 8, cols: 6, data: Float32Array.from({ length: 48 }, (_, i) => i / 8) }],
    ]),
    mlps: new Map([['new_a1', mlpWeights(6, 8)]]),
  };

  it('writes the sidecar for large matrices and MLP weights, and loads back the same program', async () => {
    const path = join(tmp, 'prog.rasp');
    const out = await writeProgramFiles(program, path);
    expect(out.sidecar).toBe(join(tmp, 'prog.weights.safetensors'));
    const text = readFileSync(path, 'utf8');
    expect(text).toContain('weights "prog.weights.safetensors"');
    expect(text).toContain('matrix B[20, 20] from weights');
    expect(text).toContain('matrix R[8, 6] = [');
    const loaded = await loadProgramFile(path);
    expect(normal(loaded)).toEqual(normal({ ...program, header: { ...program.header, weights: 'prog.weights.safetensors' } }));
    const mlp = loaded.mlps.get('new_a1')!;
    expect(Array.from(mlp.fcW.data)).toEqual(Array.from(program.mlps.get('new_a1')!.fcW.data));
    expect(mlp.lnVariance).toBeCloseTo(0.5, 7);
  });

  it('refuses to overwrite without force', async () => {
    const path = join(tmp, 'prog2.rasp');
    await writeProgramFiles(program, path);
    await expect(writeProgramFiles(program, path)).rejects.toThrow(/already exists/);
    await expect(writeProgramFiles(program, path, { force: true })).resolves.toMatchObject({ rasp: path });
  });

  it('reports errors with file:line:col and a missing sidecar by name', async () => {
    const path = join(tmp, 'prog3.rasp');
    await writeProgramFiles(program, path);
    rmSync(join(tmp, 'prog3.weights.safetensors'));
    expect(existsSync(path)).toBe(true);
    await expect(loadProgramFile(path)).rejects.toThrow(/prog3\.weights\.safetensors/);
    const bad = join(tmp, 'bad.rasp');
    await writeProgramFiles({ ...program, statements: program.statements.slice(0, 2), matrices: new Map([['B', { rows: 2, cols: 2, data: new Float64Array(4) }]]), mlps: new Map() }, bad);
    await expect(loadProgramFile(bad)).rejects.toThrow(/bad\.rasp:\d+:\d+: .*prediction/);
  });
});
