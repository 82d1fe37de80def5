// Bad input never crashes the toolchain: thousands of random and mutated programs go through the parser, the
// validator, the printer (for valid ones) and the interpreter; every failure must be a reported problem
// (diagnostics or a UserError), never an exception or a hang.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseProgramSync } from '../../server/src/language/load';
import { printProgram } from '../../server/src/program/print';
import { runProgram } from '../../server/src/interpreter/index';
import { UserError } from '../../server/src/util/errors';
import { Rng } from '../../server/src/util/rng';

const root = join(__dirname, '..', '..');
const seeds = ['majority', 'induction', 'dyck'].map((n) => readFileSync(join(root, 'examples', `${n}.rasp`), 'utf8'));

const PIECES = [
  'select', 'aggregate', 'project', 'proj_to_vocab', 'prediction', 'softmax', 'sigmoid', 'matrix', 'from', 'weights',
  'vocab', 'positions', 'output', '(', ')', '[', ']', ',', '=', '==', '+', '-', '*', '/', '%', '<', '>', '&&', '||',
  '!', 'q', 'k', 'v', 's', 'inp', 'out', 'op', 'special_op', 'scale', 'token', 'pos', 'a1', 's1', 'logits1',
  '\\circled{a}', '\\circled{', '"', '"a"', '<bos>', '<', 'BOS', 'EOS', '1e999', '-0', '0.5', '99999999999', '1e-320',
  '# layer', '# layer 0 head', '# layer 99 mlp neurons=1:x', '\n', '\t', ' ', 'uniform', 'selection', 'is', 'first',
  'harden(', 'diff_99(', 'is_5_exists(', 'mlp(', 'element_wise_op(', 'Cartesian_product(', 'is_uniform(', 'sharpen(',
  'is_pure(', 'keep_one(', 'count_diff_01(', 'count_diff_0_99(', 'by=', 'scale=0', 'abs(', 'min(', '[]', '[[1,2],[3]]', 'positions 0', 'positions 1e9', 'd_head 0',
];

function mutate(text: string, rng: Rng): string {
  let t = text;
  const edits = rng.int(1, 5);
  for (let e = 0; e < edits; e++) {
    const at = rng.int(0, t.length);
    switch (rng.int(0, 5)) {
      case 0:
        t = t.slice(0, at) + t.slice(Math.min(t.length, at + rng.int(1, 20)));
        break;
      case 1:
        t = t.slice(0, at) + PIECES[rng.int(0, PIECES.length - 1)] + t.slice(at);
        break;
      case 2: {
        const lines = t.split('\n');
        const i = rng.int(0, lines.length - 1);
        const j = rng.int(0, lines.length - 1);
        [lines[i], lines[j]] = [lines[j], lines[i]];
        t = lines.join('\n');
        break;
      }
      case 3: {
        const lines = t.split('\n');
        const i = rng.int(0, lines.length - 1);
        lines.splice(rng.int(0, lines.length), 0, lines[i]);
        t = lines.join('\n');
        break;
      }
      default:
        t = t.slice(0, at) + String.fromCharCode(rng.int(0, 127)) + t.slice(at + 1);
    }
  }
  return t;
}

function randomProgram(rng: Rng): string {
  const n = rng.int(1, 60);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push(PIECES[rng.int(0, PIECES.length - 1)]);
  return parts.join(rng.bool() ? ' ' : '');
}

function exercise(text: string, rng: Rng): 'valid' | 'invalid' {
  const { program, diagnostics } = parseProgramSync(text, 'fuzz.rasp');
  for (const d of diagnostics) {
    expect(d.line).toBeGreaterThanOrEqual(1);
    expect(d.column).toBeGreaterThanOrEqual(1);
    expect(typeof d.message).toBe('string');
  }
  if (!program) return 'invalid';
  // Valid programs print and re-parse without errors.
  const again = parseProgramSync(printProgram(program));
  expect(again.diagnostics.filter((d) => d.severity === 'error'), printProgram(program)).toEqual([]);
  const vocab = program.header.vocab;
  const len = rng.int(1, Math.min(12, program.header.positions));
  const input = Array.from({ length: len }, () => vocab[rng.int(0, vocab.length - 1)]).join(' ');
  try {
    runProgram(program, input);
  } catch (err) {
    // The interpreter may reject what it cannot run (e.g. a missing sidecar matrix) but only as a UserError.
    expect(err, String(err instanceof Error ? err.stack : err)).toBeInstanceOf(UserError);
  }
  return 'valid';
}

describe('fuzz: parser, validator, printer and interpreter', () => {
  it('survive thousands of mutated programs', () => {
    const rng = new Rng(20261125);
    const counts = { valid: 0, invalid: 0 };
    const start = performance.now();
    for (let i = 0; i < 1500; i++) {
      const t0 = performance.now();
      counts[exercise(mutate(seeds[i % seeds.length], rng), rng)]++;
      // A hang shows up as one input taking far longer than the rest.
      expect(performance.now() - t0).toBeLessThan(2000);
    }
    expect(counts.valid).toBeGreaterThan(100);
    expect(counts.invalid).toBeGreaterThan(100);
    expect(performance.now() - start).toBeLessThan(90_000);
  });

  it('survive thousands of random token soups', () => {
    const rng = new Rng(7);
    for (let i = 0; i < 1000; i++) {
      const t0 = performance.now();
      exercise(randomProgram(rng), rng);
      expect(performance.now() - t0).toBeLessThan(2000);
    }
  });
});
