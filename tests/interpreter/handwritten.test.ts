// The hand-written programs in examples/handwritten, run on generated inputs of every length 1..150 and compared
// with plain-TypeScript oracles: in process for the bulk, through the built CLI for a few.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { loadProgramFile } from '../../server/src/language/load';
import { runBatch, runProgram } from '../../server/src/interpreter/index';
import type { Program } from '../../server/src/program/types';
import { Rng } from '../../server/src/util/rng';

const dir = 'examples/handwritten';
const lengths = Array.from({ length: 150 }, (_, i) => i + 1);

function ids(program: Program, words: string[]): number[] {
  return words.map((w) => {
    const id = program.header.vocab.indexOf(w);
    if (id < 0) throw new Error(`test bug: ${w} not in vocab`);
    return id;
  });
}

/** Asserts the program's prediction at each checked position equals the oracle's. */
function expectAgrees(program: Program, seqs: string[][], oracle: (seq: string[]) => Map<number, string | string[]>): void {
  const results = runBatch(
    program,
    seqs.map((s) => ids(program, s)),
  );
  results.forEach((r, n) => {
    const want = oracle(seqs[n]);
    expect(want.size).toBeGreaterThan(0);
    for (const [p, w] of want) {
      const got = r.prediction[p];
      if (JSON.stringify(got) !== JSON.stringify(w)) {
        throw new Error(`length ${seqs[n].length}, position ${p}: got ${JSON.stringify(got)}, want ${JSON.stringify(w)} for "${seqs[n].join(' ')}"`);
      }
    }
  });
}

function distinctNumbers(rng: Rng, L: number): string[] {
  return rng.sampleWithoutReplacement(150, L).map(String);
}

/** Answer positions of `<bos> x <sep> y <eos>`: the prediction at t is the token at t+1. */
function nextTokenOracle(seq: string[]): Map<number, string> {
  const s = seq.indexOf('<sep>');
  const want = new Map<number, string>();
  for (let t = s; t < seq.length - 1; t++) want.set(t, seq[t + 1]);
  return want;
}

describe('hand-written programs agree with their oracles on lengths 1..150', () => {
  const programs = new Map<string, Program>();
  beforeAll(async () => {
    for (const name of ['reverse', 'histogram', 'sort', 'dyck1']) programs.set(name, await loadProgramFile(`${dir}/${name}.rasp`));
  });

  it('reverse', () => {
    const rng = new Rng(1);
    const seqs = lengths.map((L) => {
      const x = distinctNumbers(rng, L);
      return ['<bos>', ...x, '<sep>', ...[...x].reverse(), '<eos>'];
    });
    expectAgrees(programs.get('reverse') as Program, seqs, nextTokenOracle);
  });

  it('sort of unique tokens', () => {
    const rng = new Rng(2);
    const seqs = lengths.map((L) => {
      const x = distinctNumbers(rng, L);
      return ['<bos>', ...x, '<sep>', ...[...x].sort((a, b) => Number(a) - Number(b)), '<eos>'];
    });
    expectAgrees(programs.get('sort') as Program, seqs, nextTokenOracle);
  });

  it('histogram', () => {
    const rng = new Rng(3);
    // Few letters for long runs of repeats, many for variety.
    const seqs = lengths.map((L) => ['<bos>', ...Array.from({ length: L }, () => rng.choice(L % 2 ? ['a', 'b', 'c', 'd'] : ['a', 'b']))]);
    expectAgrees(programs.get('histogram') as Program, seqs, (seq) => {
      const counts = new Map<string, number>();
      const want = new Map<number, string>();
      seq.forEach((t, p) => {
        if (p === 0) return;
        counts.set(t, (counts.get(t) ?? 0) + 1);
        want.set(p, String(counts.get(t)));
      });
      return want;
    });
  });

  it('Dyck-1 (depth <= 4) allowed next tokens', () => {
    const rng = new Rng(4);
    const seqs = lengths.map((L) => {
      // A random walk that stays within depth 0..4: a prefix of a member of the language.
      const s: string[] = ['<bos>'];
      let depth = 0;
      for (let i = 0; i < L; i++) {
        const open = depth === 0 || (depth < 4 && rng.bool());
        s.push(open ? 'a' : 'b');
        depth += open ? 1 : -1;
      }
      return s;
    });
    expectAgrees(programs.get('dyck1') as Program, seqs, (seq) => {
      const want = new Map<number, string[]>();
      let depth = 0;
      seq.forEach((t, p) => {
        if (t === 'a') depth++;
        if (t === 'b') depth--;
        const allowed: string[] = [];
        if (depth < 4) allowed.push('a');
        if (depth > 0) allowed.push('b');
        if (depth === 0) allowed.push('<eos>');
        want.set(p, allowed);
      });
      return want;
    });
  });

  it('the oracle comparison can fail: a wrong answer is caught', () => {
    const seq = ['<bos>', '5', '9', '<sep>', '9', '5', '<eos>'];
    const r = runProgram(programs.get('sort') as Program, seq.join(' '));
    // sort predicts 5 after <sep>; the reverse oracle wants 9
    expect(r.prediction[3]).toBe('5');
    expect(() => expectAgrees(programs.get('sort') as Program, [seq], nextTokenOracle)).toThrow(/position 3/);
  });
});

describe('hand-written programs through the CLI', () => {
  const rasp = (args: string[]) => spawnSync(process.execPath, ['bin/rasp.cjs', ...args], { encoding: 'utf8' });

  it('reverse, sort and histogram at length 150, Dyck-1 at length 75 (--json); the text form of sets', () => {
    const rng = new Rng(5);
    const x = distinctNumbers(rng, 150);
    const cases: [string, string[], (seq: string[]) => Map<number, string | string[]>][] = [
      ['reverse', ['<bos>', ...x, '<sep>', ...[...x].reverse(), '<eos>'], nextTokenOracle],
      ['sort', ['<bos>', ...x, '<sep>', ...[...x].sort((a, b) => Number(a) - Number(b)), '<eos>'], nextTokenOracle],
    ];
    for (const [name, seq, oracle] of cases) {
      const r = rasp(['run', `${dir}/${name}.rasp`, '--input', seq.join(' '), '--json']);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const doc = JSON.parse(r.stdout) as { prediction: string[]; variables: Record<string, unknown> };
      expect(doc.prediction).toHaveLength(seq.length);
      for (const [p, w] of oracle(seq)) expect(doc.prediction[p]).toEqual(w);
    }
    const letters = ['<bos>', ...Array.from({ length: 150 }, () => rng.choice(['a', 'b', 'c']))];
    const h = rasp(['run', `${dir}/histogram.rasp`, '--input', letters.join(' '), '--json']);
    expect(h.status).toBe(0);
    const counts = new Map<string, number>();
    const hist = (JSON.parse(h.stdout) as { prediction: string[] }).prediction;
    letters.forEach((t, p) => {
      if (p === 0) return;
      counts.set(t, (counts.get(t) ?? 0) + 1);
      expect(hist[p]).toBe(String(counts.get(t)));
    });
    const dyck = ['<bos>', ...Array.from({ length: 75 }, (_, i) => (i % 4 < 2 ? 'a' : 'b'))];
    const r = rasp(['run', `${dir}/dyck1.rasp`, '--input', dyck.join(' '), '--json']);
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout) as { prediction: string[][] };
    expect(doc.prediction[0]).toEqual(['a', '<eos>']);
    expect(doc.prediction[1]).toEqual(['a', 'b']);
    expect(doc.prediction[4]).toEqual(['a', '<eos>']);
    const text = rasp(['run', `${dir}/dyck1.rasp`, '--input', '<bos> a b']);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/^prediction\n {2}0 <bos> {2}\{a <eos>\}\n {2}1 a {6}\{a b\}\n {2}2 b {6}\{a <eos>\}\n$/m);
  });
});
