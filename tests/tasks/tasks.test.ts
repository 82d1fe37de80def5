import { describe, expect, it } from 'vitest';
import {
  DEFAULT_BINS,
  decisions,
  formatSequence,
  getTask,
  mismatchPositions,
  parseLengthBins,
  parseSequence,
  sampleBins,
  sequenceCorrect,
  sequenceMatches,
  taskFromFolderName,
  taskNames,
  type Task,
} from '../../server/src/tasks/index';
import { UserError } from '../../server/src/util/errors';
import { Rng } from '../../server/src/util/rng';

const ALL = [...taskNames(), 'bce_D1', 'bce_D7'];

/** Logits that a perfect model would produce: the oracle's decisions, as +-5 values. */
function perfectLogits(task: Task, seq: number[]): Float32Array {
  const V = task.vocab.length;
  const logits = new Float32Array(seq.length * V).fill(-5);
  const labels = task.labels(seq);
  labels.positions.forEach((p, i) => {
    if (labels.objective === 'ce') logits[p * V + labels.tokens[i]] = 5;
    else labels.rows[i].forEach((bit, j) => (logits[p * V + j] = bit ? 5 : -5));
  });
  return logits;
}

function lengthsToTry(task: Task): number[] {
  const out: number[] = [];
  for (let n = task.minLength; n <= task.maxLength && out.length < 6; n++) if (task.validLength(n)) out.push(n);
  for (let n = task.maxLength; n >= task.minLength && out.length < 10; n--) if (task.validLength(n)) out.push(n);
  for (let n = 40; n <= 60; n++) if (task.validLength(n)) out.push(n);
  return out;
}

describe('registry', () => {
  it('knows every task of the paper with its vocabulary and special ids', () => {
    expect(getTask('bin_majority').vocab).toEqual(['0', '1', '<bos>', '<sep>', '<eos>', '<pad>']);
    expect(getTask('majority').special).toEqual({ bos: 26, sep: 27, eos: 28, pad: 29 });
    expect(getTask('addition').special).toEqual({ bos: 3, sep: 4, eos: 5, pad: 6 });
    expect(getTask('unique_bigram_copy').special.bos).toBe(16);
    expect(getTask('sort').special).toEqual({ bos: 150, sep: 151, eos: 152, pad: 153 });
    expect(getTask('bce_abcde').vocab.slice(0, 6)).toEqual(['a', 'b', 'c', 'd', 'e', '<bos>']);
    expect(getTask('bce_012_0_2').special.bos).toBe(3);
    expect(getTask('bce_aastar').vocab.length).toBe(5);
    expect(getTask('bce_ab_d_bc').special.bos).toBe(4);
    expect(getTask('bce_D37').objective).toBe('bce');
    const positions = Object.fromEntries(
      ['bin_majority', 'bin_majority_interleave', 'unique_copy', 'count', 'addition', 'bce_D2'].map((n) => [n, getTask(n).nPositions]),
    );
    expect(positions).toEqual({ bin_majority: 154, bin_majority_interleave: 156, unique_copy: 303, count: 155, addition: 302, bce_D2: 152 });
    for (const lang of ['tomita1', 'tomita2', 'tomita3', 'tomita4', 'tomita5', 'tomita6', 'tomita7', 'aastar', 'aaaastar', 'ababstar', 'abcde', 'ab_d_bc', '012_0_2']) {
      expect(taskNames()).toContain(`bce_${lang}`);
    }
  });

  it('refuses unknown tasks with a list of the known ones', () => {
    expect(() => getTask('bce_D0')).toThrow(UserError);
    expect(() => getTask('nope')).toThrow(/unknown task "nope"; known tasks: bin_majority, .*bce_tomita3/);
  });

  it('reads the task from the paper folder names', () => {
    expect(taskFromFolderName('/x/y/sort-@1l1h256d3lr01drop')).toBe('sort');
    expect(taskFromFolderName('bce_D2-@1l1h16d3lr00drop/')).toBe('bce_D2');
    expect(taskFromFolderName('unique_copy-^2l1h64d3lr01drop-1100')).toBe('unique_copy');
    expect(taskFromFolderName('bce_012_0_2-@1l1h64d4lr00drop')).toBe('bce_012_0_2');
    expect(taskFromFolderName('bin_majority')).toBe('bin_majority');
    expect(taskFromFolderName('my-model')).toBeUndefined();
  });

  it('parses length bins and token strings', () => {
    expect(parseLengthBins('0-50, 51-100,7')).toEqual([[0, 50], [51, 100], [7, 7]]);
    expect(() => parseLengthBins('5-2')).toThrow(UserError);
    expect(() => parseLengthBins('a-b')).toThrow(/expected LO-HI/);
    const t = getTask('bce_D2');
    expect(parseSequence(t, '<bos> a b <eos>')).toEqual([2, 0, 1, 4]);
    expect(formatSequence(t, [2, 0, 1, 4])).toBe('<bos> a b <eos>');
    expect(() => parseSequence(t, 'a c')).toThrow(/no token "c"/);
  });
});

describe.each(ALL)('task %s', (name) => {
  const task = getTask(name);
  it('generates oracle-consistent sequences of every valid length', () => {
    const rng = new Rng(7);
    const { bos, sep, eos, pad } = task.special;
    for (const n of lengthsToTry(task)) {
      for (let k = 0; k < 4; k++) {
        const seq = task.generate(n, rng);
        expect(seq[0]).toBe(bos);
        expect(task.lengthOf(seq)).toBe(n);
        expect(seq.length).toBeLessThanOrEqual(task.nPositions);
        expect(task.maxOffset(seq.length) + seq.length).toBeLessThanOrEqual(task.nPositions);
        const labels = task.labels(seq);
        expect(task.scoredPositions(seq)).toEqual(labels.positions);
        if (labels.objective === 'ce') {
          // Teacher forcing: the answer written in the sequence is the oracle's, ending the sequence.
          labels.positions.forEach((p, i) => expect(seq[p + 1]).toBe(labels.tokens[i]));
          expect(labels.positions[labels.positions.length - 1]).toBe(seq.length - 2);
          expect(seq.indexOf(sep)).toBe(labels.positions[0]);
        } else {
          expect(seq[seq.length - 1]).toBe(eos);
          expect(labels.positions).toEqual(Array.from({ length: seq.length - 1 }, (_, i) => i));
          labels.rows.forEach((row, i) => {
            expect(row[bos] + row[sep] + row[pad]).toBe(0);
            if (i + 1 < seq.length - 1) expect(row[seq[i + 1]]).toBe(1); // every symbol was allowed
          });
          expect(labels.rows[labels.rows.length - 1][eos]).toBe(1); // the string may end: it is a member
        }
        expect(sequenceCorrect(task, seq, perfectLogits(task, seq))).toBe(true);
      }
    }
  });

  it('rejects invalid lengths and samples only valid ones per bin', () => {
    expect(() => task.generate(task.maxLength + 1, new Rng(1))).toThrow(UserError);
    const samples = sampleBins(task, DEFAULT_BINS, 25, 3);
    samples.forEach((bin, i) => {
      expect(bin).toHaveLength(25);
      for (const seq of bin) {
        const n = task.lengthOf(seq);
        expect(task.validLength(n)).toBe(true);
        expect(n).toBeGreaterThanOrEqual(DEFAULT_BINS[i][0]);
        expect(n).toBeLessThanOrEqual(DEFAULT_BINS[i][1]);
      }
    });
  });

  it('is deterministic per seed', () => {
    expect(sampleBins(task, [[0, 50]], 20, 11)).toEqual(sampleBins(task, [[0, 50]], 20, 11));
    if (!['bce_D1', 'bce_tomita1', 'bce_tomita2', 'bce_aastar', 'bce_aaaastar', 'bce_ababstar'].includes(name)) {
      // every other task has randomness beyond the length
      const a = sampleBins(task, [[20, 20].map((x) => (task.validLength(x) ? x : x + 1)) as [number, number]], 20, 1);
      const b = sampleBins(task, [[20, 20].map((x) => (task.validLength(x) ? x : x + 1)) as [number, number]], 20, 2);
      expect(a).not.toEqual(b);
    }
  });

  it('scores one wrong decision as a wrong sequence', () => {
    const seq = task.generate(lengthsToTry(task)[2], new Rng(5));
    const logits = perfectLogits(task, seq);
    const positions = task.scoredPositions(seq);
    const p = positions[positions.length - 1];
    const V = task.vocab.length;
    const broken = logits.slice();
    if (task.objective === 'ce') broken[p * V + ((task.labels(seq) as { tokens: number[] }).tokens.at(-1)! + 1) % V] = 9;
    else broken[p * V + task.special.pad] = 1; // a special-token bit counts too
    expect(sequenceCorrect(task, seq, broken)).toBe(false);
    expect(sequenceMatches(task, seq, logits, broken)).toBe(false);
    expect(mismatchPositions(task, seq, logits, broken)).toEqual([p]);
    expect(sequenceMatches(task, seq, logits, logits.map((x) => x * 2))).toBe(true);
  });
});

/** Brute-force allowed-next sets from a membership test: prefix -> (symbols continuing to a member, may end). */
function bruteForce(alphabetSize: number, maxLen: number, member: (s: number[]) => boolean) {
  const table = new Map<string, { next: Set<number>; end: boolean }>();
  const get = (k: string) => table.get(k) ?? table.set(k, { next: new Set(), end: false }).get(k)!;
  const visit = (s: number[]): void => {
    if (member(s)) {
      get(s.join(',')).end = true;
      for (let i = 0; i < s.length; i++) get(s.slice(0, i).join(',')).next.add(s[i]);
    }
    if (s.length < maxLen) for (let c = 0; c < alphabetSize; c++) visit([...s, c]);
  };
  visit([]);
  return table;
}

const runs = (s: number[]): [number, number][] => {
  const out: [number, number][] = [];
  for (const c of s) {
    if (out.length && out[out.length - 1][0] === c) out[out.length - 1][1]++;
    else out.push([c, 1]);
  }
  return out;
};

const MEMBERSHIP: Record<string, (s: number[]) => boolean> = {
  bce_D2: (s) => {
    let d = 0;
    for (const c of s) if ((d += c === 0 ? 1 : -1) < 0 || d > 2) return false;
    return d === 0;
  },
  bce_D3: (s) => {
    let d = 0;
    for (const c of s) if ((d += c === 0 ? 1 : -1) < 0 || d > 3) return false;
    return d === 0;
  },
  bce_tomita1: (s) => /^1*$/.test(s.join('')),
  bce_tomita2: (s) => /^(10)*$/.test(s.join('')),
  bce_tomita3: (s) => {
    const r = runs(s);
    return !r.some(([c, n], i) => c === 1 && n % 2 === 1 && r[i + 1] && r[i + 1][1] % 2 === 1);
  },
  bce_tomita4: (s) => !s.join('').includes('000'),
  bce_tomita5: (s) => s.filter((c) => c === 0).length % 2 === 0 && s.filter((c) => c === 1).length % 2 === 0,
  bce_tomita6: (s) => (s.filter((c) => c === 0).length - s.filter((c) => c === 1).length) % 3 === 0,
  bce_tomita7: (s) => /^0*1*0*1*$/.test(s.join('')),
  bce_aastar: (s) => s.length % 2 === 0,
  bce_aaaastar: (s) => s.length % 4 === 0,
  bce_ababstar: (s) => /^(0101)*$/.test(s.join('')),
  bce_abcde: (s) => /^0+1+2+3+4+$/.test(s.join('')),
  bce_ab_d_bc: (s) => /^[01]*3[12]*$/.test(s.join('')),
  bce_012_0_2: (s) => /^[012]*02*$/.test(s.join('')),
};

describe('formal-language oracles agree with brute force over all short prefixes', () => {
  it.each(Object.keys(MEMBERSHIP))('%s', (name) => {
    const task = getTask(name);
    const k = task.vocab.length - 4;
    const maxLen = { 1: 12, 2: 11, 3: 8, 4: 7, 5: 7 }[k]!;
    const table = bruteForce(k, maxLen, MEMBERSHIP[name]);
    const check = (s: number[]): void => {
      const seq = [task.special.bos, ...s];
      const rows = (task.labels(seq) as { rows: Uint8Array[] }).rows;
      const want = table.get(s.join(',')) ?? { next: new Set<number>(), end: false };
      const got = rows[rows.length - 1];
      const expected = new Uint8Array(task.vocab.length);
      for (const c of want.next) expected[c] = 1;
      if (want.end) expected[task.special.eos] = 1;
      expect([...got], `after "${s.join('')}"`).toEqual([...expected]);
      if (s.length < maxLen - 6) for (let c = 0; c < k; c++) check([...s, c]);
    };
    check([]);
  });
});

describe('oracles on hand-made cases', () => {
  const seqOf = (task: Task, text: string) => parseSequence(task, text);
  const answer = (name: string, prompt: string) => {
    const task = getTask(name);
    const labels = task.labels(seqOf(task, `<bos> ${prompt} <sep>`).concat(new Array(400).fill(0)));
    return formatSequence(task, (labels as { tokens: number[] }).tokens);
  };
  it('computes the answers', () => {
    expect(answer('bin_majority', '0 1 1')).toBe('1');
    expect(answer('majority', 'b a c a b a')).toBe('a');
    expect(answer('parity', '')).toBe('0');
    expect(answer('parity', '1 0 1 1')).toBe('1');
    expect(answer('bin_majority_interleave', '1 0 0 1 0 1 0 0 1')).toBe('1 0 1 <eos>');
    expect(answer('sort', '17 3 99 42 8')).toBe('3 8 17 42 99 <eos>');
    expect(answer('unique_reverse', '4 9 1')).toBe('1 9 4 <eos>');
    expect(answer('count', '7 11')).toBe('7 8 9 10 11 <eos>');
    expect(answer('addition', '1 0 1 + 1 1')).toBe('1 0 0 0 <eos>');
    expect(answer('addition', '0 + 0')).toBe('0 <eos>');
    expect(() => answer('bin_majority', '0 1')).toThrow(/tie/);
    expect(() => answer('unique_copy', '3 3')).toThrow(/repeat/);
  });

  it('bce_D2 labels for aabbab match the paper', () => {
    const task = getTask('bce_D2');
    const rows = (task.labels(seqOf(task, '<bos> a a b b a b <eos>')) as { rows: Uint8Array[] }).rows;
    const sets = rows.map((r) => task.vocab.filter((_, j) => r[j]).join(','));
    expect(sets).toEqual(['a,<eos>', 'a,b', 'b', 'a,b', 'a,<eos>', 'a,b', 'a,<eos>']);
  });

  it('BCE scoring includes special-token bits and excludes the <eos> position', () => {
    const task = getTask('bce_D2');
    const seq = seqOf(task, '<bos> a b <eos>');
    // rows: bos {a,eos}; after a {a,b}; after b {a,eos}; eos row ignored
    const V = 6;
    const logits = new Float32Array(4 * V).fill(-1);
    const set = (p: number, ids: number[]) => ids.forEach((j) => (logits[p * V + j] = 1));
    set(0, [0, 4]);
    set(1, [0, 1]);
    set(2, [0, 4]);
    set(3, [1, 2, 3, 5]); // junk at the <eos> position does not count
    expect(sequenceCorrect(task, seq, logits)).toBe(true);
    const bosBit = logits.slice();
    bosBit[1 * V + 2] = 0.5; // <bos> predicted as a continuation
    expect(sequenceCorrect(task, seq, bosBit)).toBe(false);
    const d = decisions(task, logits, 4);
    expect(d.objective === 'bce' && [...d.bits.slice(0, 6)]).toEqual([1, 0, 0, 0, 1, 0]);
  });

  it('CE scoring is shifted: the prediction at t-1 is checked against token t', () => {
    const task = getTask('bin_majority');
    const seq = seqOf(task, '<bos> 1 1 0 <sep> 1');
    const V = 6;
    const logits = new Float32Array(seq.length * V);
    logits[4 * V + 1] = 3; // at <sep>: predicts 1
    expect(sequenceCorrect(task, seq, logits)).toBe(true);
    const atAnswer = new Float32Array(seq.length * V);
    atAnswer[5 * V + 1] = 3; // an unshifted reading would look here
    atAnswer[4 * V + 0] = 3;
    expect(sequenceCorrect(task, seq, atAnswer)).toBe(false);
    const d = decisions(task, logits, seq.length);
    expect(d.objective === 'ce' && d.ids[4]).toBe(1);
    // the oracle, not the sequence, decides: a wrong answer written in the sequence is not the target
    expect(sequenceCorrect(task, seqOf(task, '<bos> 1 1 0 <sep> 0'), logits)).toBe(true);
  });
});

describe('generator distributions', () => {
  const lengths = (name: string, lo: number, hi: number) => {
    const task = getTask(name);
    return sampleBins(task, [[lo, hi]], 400, 9)[0].map((s) => task.lengthOf(s));
  };
  it('draws lengths uniformly over the valid ones, raising the minimum', () => {
    expect(Math.min(...lengths('parity', 0, 3))).toBe(0);
    expect(new Set(lengths('bin_majority', 0, 3))).toEqual(new Set([1, 2, 3]));
    expect(new Set(lengths('bce_D2', 0, 7))).toEqual(new Set([2, 4, 6]));
    expect(new Set(lengths('bce_abcde', 0, 6))).toEqual(new Set([5, 6]));
    expect(new Set(lengths('count', 0, 3))).toEqual(new Set([2, 3]));
    expect(new Set(lengths('bin_majority_interleave', 51, 100)).has(51)).toBe(true);
    expect(Math.max(...lengths('bin_majority_interleave', 51, 100))).toBe(99);
    expect(() => lengths('bce_D2', 151, 160)).toThrow(/no valid length/);
  });
  it('produces the constrained inputs', () => {
    const rng = new Rng(3);
    const bigram = getTask('unique_bigram_copy');
    for (let i = 0; i < 20; i++) {
      const x = bigram.generate(150, rng).slice(1, 151);
      const pairs = x.slice(1).map((c, j) => `${x[j]},${c}`);
      expect(new Set(pairs).size).toBe(pairs.length);
    }
    const add = getTask('addition');
    for (let i = 0; i < 50; i++) {
      const text = formatSequence(add, add.generate(12, rng));
      expect(text).not.toMatch(/(<bos>|\+) 0 [01]/); // no leading zeros
    }
    const count = getTask('count');
    for (let i = 0; i < 50; i++) {
      const s = count.generate(150, rng);
      expect(s.slice(1, 3)).toEqual([0, 149]);
    }
  });
});
