// `rasp run` as a process: the text summary, exactly one JSON document with --json, and exit codes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const rasp = (args: string[]) => spawnSync(process.execPath, ['bin/rasp.cjs', 'run', ...args], { encoding: 'utf8' });

describe('rasp run', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rasp-run-'));
    writeFileSync(
      join(dir, 'prev.rasp'),
      [
        'program "previous token"',
        'vocab [x, y, z, <bos>, <sep>, <eos>, <pad>]',
        'positions 8',
        'output softmax',
        's1 = select(q=pos, k=pos, op=(k==q-1))',
        'a1 = aggregate(s=s1, v=token)',
        'count = a1["x"] + 2 * a1["y"]',
        'logits1 = project(inp=a1, op=(inp==out))',
        'logits2 = project(op=M)',
        'prediction = softmax(logits1 + logits2)',
        'matrix M = [[0, 0, 0, 0, 0, 0, 1]]',
        '',
      ].join('\n'),
    );
    writeFileSync(join(dir, 'broken.rasp'), 'program "broken"\nvocab [x]\npositions 4\noutput softmax\na1 = aggregate(s=[], v=nothing)\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('--json prints one document: the prediction per position and every variable summarised', () => {
    const r = rasp([join(dir, 'prev.rasp'), '--input', '<bos> x y z', '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout) as { prediction: string[]; variables: Record<string, { basis: string; size: number; values: unknown[] }> };
    expect(Object.keys(doc)).toEqual(['prediction', 'variables']);
    // a1 at position 0 is <bos> itself (no previous position); otherwise the previous token
    expect(doc.prediction).toEqual(['<bos>', '<bos>', 'x', 'y']);
    expect(doc.variables.a1).toEqual({ basis: 'token', size: 7, values: [{ '<bos>': 1 }, { '<bos>': 1 }, { x: 1 }, { y: 1 }] });
    expect(doc.variables.count).toEqual({ basis: 'numeric', size: 1, values: [0, 0, 1, 2] });
    // the bias matrix puts 1 on <pad>, far below the 1e4 of the copied token
    expect(doc.variables.logits2.values[0]).toEqual({ '<pad>': 1 });
    expect(Object.keys(doc.variables)).toEqual(['a1', 'count', 'logits1', 'logits2']);
  });

  it('prints a readable summary by default, using the header example when --input is absent', () => {
    const r = rasp(['examples/majority.rasp']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^a1 {2}\(token, 6\)$/m);
    expect(r.stdout).toMatch(/^ {2}4 1 {6}1 0\.6, 0 0\.2, <bos> 0\.2$/m);
    expect(r.stdout).toMatch(/^prediction\n(.*\n){5} {2}5 <sep> {2}1$/m);
  });

  it('paper majority example: 1 for "<bos> 1 0 1 1 <sep>", 0 for "<bos> 0 0 1 <sep>"', () => {
    for (const [input, want] of [
      ['<bos> 1 0 1 1 <sep>', '1'],
      ['<bos> 0 0 1 <sep>', '0'],
    ]) {
      const r = rasp(['examples/majority.rasp', '--input', input, '--json']);
      expect(r.status).toBe(0);
      expect((JSON.parse(r.stdout) as { prediction: string[] }).prediction.at(-1)).toBe(want);
    }
  });

  it('exits 1 with a message naming the problem on user errors', () => {
    const cases: [string[], RegExp][] = [
      [[join(dir, 'prev.rasp'), '--input', '<bos> x w'], /input token 'w' at position 2 is not in the vocabulary/],
      [[join(dir, 'prev.rasp'), '--input', '<bos> x y z x y z x y'], /9 tokens but the program's positions are 0\.\.7/],
      [[join(dir, 'prev.rasp')], /no --input given and the program header has no example/],
      [[join(dir, 'prev.rasp'), '--input', 'x', '--top', '0'], /--top must be a positive integer/],
      [[join(dir, 'missing.rasp'), '--input', 'x'], /missing\.rasp.*cannot read/],
      [[join(dir, 'broken.rasp'), '--input', 'x'], /broken\.rasp:5:/],
    ];
    for (const [args, message] of cases) {
      const r = rasp([...args, '--json']);
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    }
  });
});
