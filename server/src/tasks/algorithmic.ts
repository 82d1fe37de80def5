// The algorithmic tasks (CE objective, tasks-and-models.md section 2): `<bos> prompt <sep> answer [<eos>]`,
// scored on the answer tokens (and <eos>) under teacher forcing with shifted labels.
import { UserError } from '../util/errors';
import type { Rng } from '../util/rng';
import { checkLength, makeVocab, numberSymbols, shuffledMix, uniformValidLength } from './common';
import type { Task, TaskLabels } from './types';

interface CeSpec {
  name: string;
  description: string;
  symbols: string[];
  nPositions: number;
  minLength: number;
  maxLength: number;
  lengthMeaning: string;
  /** Whether the answer is followed by <eos> (a scored target). */
  eos: boolean;
  /** Extra validity rule beyond [minLength, maxLength]. */
  valid?: (n: number) => boolean;
  /** Length distribution over [lo, hi] when it is not uniform over the valid lengths. */
  draw?: (lo: number, hi: number, rng: Rng, task: Task) => number;
  /** Random prompt (the tokens between <bos> and <sep>) of length n. */
  prompt: (n: number, rng: Rng) => number[];
  /** The gold answer (without <eos>); throws UserError when the prompt has none (e.g. a majority tie). */
  solve: (prompt: readonly number[]) => number[];
  /** Length n of a prompt (default: its token count). */
  lengthOf?: (prompt: readonly number[]) => number;
}

function ceTask(spec: CeSpec): Task {
  const { vocab, special } = makeVocab(spec.symbols);
  const nSymbols = spec.symbols.length;
  const splitPrompt = (seq: readonly number[]): { prompt: number[]; sep: number } => {
    if (seq.length === 0 || seq[0] !== special.bos) {
      throw new UserError(`task ${spec.name}: a sequence must start with <bos>`);
    }
    const sep = seq.indexOf(special.sep);
    if (sep < 0) throw new UserError(`task ${spec.name}: the sequence has no <sep>`);
    const prompt = seq.slice(1, sep);
    for (const t of prompt) {
      if (!Number.isInteger(t) || t < 0 || t >= nSymbols) {
        throw new UserError(`task ${spec.name}: the prompt holds ${vocab[t] ?? String(t)}, which is not one of its symbols`);
      }
    }
    return { prompt, sep };
  };
  const task: Task = {
    name: spec.name,
    objective: 'ce',
    description: spec.description,
    vocab,
    special,
    nPositions: spec.nPositions,
    minLength: spec.minLength,
    maxLength: spec.maxLength,
    lengthMeaning: spec.lengthMeaning,
    validLength: (n) =>
      Number.isInteger(n) && n >= spec.minLength && n <= spec.maxLength && (spec.valid ? spec.valid(n) : true),
    drawLength: (lo, hi, rng) => (spec.draw ? spec.draw(lo, hi, rng, task) : uniformValidLength(task, lo, hi, rng)),
    generate(n, rng) {
      checkLength(task, n);
      const prompt = spec.prompt(n, rng);
      const answer = spec.solve(prompt);
      return [special.bos, ...prompt, special.sep, ...answer, ...(spec.eos ? [special.eos] : [])];
    },
    scoredPositions: (seq) => task.labels(seq).positions,
    labels(seq): TaskLabels {
      const { prompt, sep } = splitPrompt(seq);
      const tokens = spec.solve(prompt);
      if (spec.eos) tokens.push(special.eos);
      // The prediction for answer token i is made at the position before it: <sep> for the first one.
      const positions = tokens.map((_, i) => sep + i);
      if (seq.length < sep + tokens.length) {
        throw new UserError(
          `task ${spec.name}: the sequence stops before its answer is complete (${seq.length} tokens, ${sep + 1 + tokens.length} needed)`,
        );
      }
      return { objective: 'ce', positions, tokens };
    },
    maxOffset: (seqLength) => Math.max(0, spec.nPositions - seqLength),
    lengthOf(seq) {
      const { prompt } = splitPrompt(seq);
      return spec.lengthOf ? spec.lengthOf(prompt) : prompt.length;
    },
  };
  return task;
}

/** z zeros and n-z ones, shuffled, with z drawn uniformly from 0..n and redrawn on ties. */
function bitsWithoutTie(n: number, rng: Rng): number[] {
  let z: number;
  do z = rng.int(0, n);
  while (2 * z === n);
  return shuffledMix(n, z, 0, 1, rng);
}

function bitMajority(bits: readonly number[], what: string): number {
  let ones = 0;
  for (const b of bits) ones += b;
  const zeros = bits.length - ones;
  if (zeros === ones) throw new UserError(`${what}: ${zeros} zeros and ${ones} ones tie, so there is no majority`);
  return zeros > ones ? 0 : 1;
}

const NUMBERS = numberSymbols(150);

function distinctNumbers(n: number, rng: Rng): number[] {
  return rng.sampleWithoutReplacement(150, n);
}

function requireDistinct(name: string, prompt: readonly number[]): void {
  if (new Set(prompt).size !== prompt.length) throw new UserError(`task ${name}: the input must not repeat a number`);
}

const BIGRAM_VOCAB = 16; // ceil(1.25 * sqrt(150))

function bigramKey(a: number, b: number): number {
  return a * BIGRAM_VOCAB + b;
}

/** x with every adjacent bigram distinct (tasks-and-models.md 2, unique_bigram_copy). */
function uniqueBigramString(n: number, rng: Rng): number[] {
  for (;;) {
    const head = Math.min(BIGRAM_VOCAB, n);
    let x: number[];
    let used: Set<number>;
    do {
      x = Array.from({ length: head }, () => rng.int(0, BIGRAM_VOCAB - 1));
      used = new Set<number>();
      for (let i = 1; i < x.length; i++) used.add(bigramKey(x[i - 1], x[i]));
    } while (used.size !== Math.max(0, x.length - 1));
    const unusedOut = new Array<number>(BIGRAM_VOCAB).fill(BIGRAM_VOCAB);
    for (const k of used) unusedOut[Math.floor(k / BIGRAM_VOCAB)]--;
    let stuck = false;
    while (x.length < n) {
      const last = x[x.length - 1];
      const candidates: number[] = [];
      let best = -1;
      for (let c = 0; c < BIGRAM_VOCAB; c++) {
        if (used.has(bigramKey(last, c))) continue;
        if (unusedOut[c] > best) {
          best = unusedOut[c];
          candidates.length = 0;
        }
        if (unusedOut[c] === best) candidates.push(c);
      }
      if (candidates.length === 0) {
        stuck = true; // every bigram out of `last` is used: start over (does not happen below length ~200)
        break;
      }
      const c = rng.choice(candidates);
      used.add(bigramKey(last, c));
      unusedOut[last]--;
      x.push(c);
    }
    if (!stuck) return x;
  }
}

function requireUniqueBigrams(prompt: readonly number[]): void {
  const seen = new Set<number>();
  for (let i = 1; i < prompt.length; i++) {
    const k = bigramKey(prompt[i - 1], prompt[i]);
    if (seen.has(k)) throw new UserError(`task unique_bigram_copy: the bigram ${prompt[i - 1]} ${prompt[i]} occurs twice`);
    seen.add(k);
  }
}

/** Binary operand of `len` digits, MSB first: a multi-digit operand starts with 1. */
function operand(len: number, rng: Rng): number[] {
  if (len === 1) return [rng.int(0, 1)];
  return [1, ...Array.from({ length: len - 1 }, () => rng.int(0, 1))];
}

const PLUS = 2;

function binarySum(prompt: readonly number[]): number[] {
  const plus = prompt.indexOf(PLUS);
  if (plus <= 0 || plus === prompt.length - 1 || prompt.indexOf(PLUS, plus + 1) >= 0) {
    throw new UserError('task addition: the input must be A + B with binary A and B');
  }
  const a = prompt.slice(0, plus).reverse();
  const b = prompt.slice(plus + 1).reverse();
  const sum: number[] = [];
  let carry = 0;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const s = (a[i] ?? 0) + (b[i] ?? 0) + carry;
    sum.push(s & 1);
    carry = s >> 1;
  }
  if (carry) sum.push(1);
  while (sum.length > 1 && sum[sum.length - 1] === 0) sum.pop(); // no leading zeros
  return sum.reverse();
}

export function algorithmicTasks(): Task[] {
  return [
    ceTask({
      name: 'bin_majority',
      description: 'Majority: the more frequent bit of a binary string (no ties)',
      symbols: ['0', '1'],
      nPositions: 154,
      minLength: 1,
      maxLength: 151,
      lengthMeaning: 'input bits',
      eos: false,
      valid: () => true,
      prompt: bitsWithoutTie,
      solve: (p) => [bitMajority(p, 'bin_majority')],
    }),
    ceTask({
      name: 'majority',
      description: 'Most Frequent: the unique most frequent letter of a string over a-z',
      symbols: Array.from({ length: 26 }, (_, i) => String.fromCharCode(97 + i)),
      nPositions: 154,
      minLength: 1,
      maxLength: 151,
      lengthMeaning: 'letters',
      eos: false,
      prompt(n, rng) {
        for (;;) {
          const x = Array.from({ length: n }, () => rng.int(0, 25));
          const counts = new Array<number>(26).fill(0);
          for (const t of x) counts[t]++;
          counts.sort((a, b) => b - a);
          if (counts[0] !== counts[1]) return x;
        }
      },
      solve(p) {
        const counts = new Array<number>(26).fill(0);
        for (const t of p) counts[t]++;
        let best = 0;
        for (let i = 1; i < 26; i++) if (counts[i] > counts[best]) best = i;
        if (counts.filter((c) => c === counts[best]).length > 1) {
          throw new UserError('task majority: the two most frequent letters tie');
        }
        return [best];
      },
    }),
    ceTask({
      name: 'parity',
      description: 'Parity: whether a binary string has an odd number of ones',
      symbols: ['0', '1'],
      nPositions: 154,
      minLength: 0,
      maxLength: 151,
      lengthMeaning: 'input bits (0 allowed)',
      eos: false,
      prompt: (n, rng) => shuffledMix(n, n - rng.int(0, n), 0, 1, rng),
      solve: (p) => [p.reduce((s, b) => s + b, 0) % 2],
    }),
    ceTask({
      name: 'bin_majority_interleave',
      description: 'Majority of three interleaved bit streams (position j belongs to stream j mod 3), then <eos>',
      symbols: ['0', '1'],
      nPositions: 156,
      minLength: 3,
      maxLength: 150,
      lengthMeaning: 'input bits, a multiple of 3',
      eos: true,
      valid: (n) => n % 3 === 0,
      // The paper draws t uniformly and rounds it to whole periods, nudged back into the range.
      draw(lo, hi, rng, task) {
        const a = Math.max(3, lo);
        const b = Math.min(task.maxLength, hi);
        if (b < a) return uniformValidLength(task, lo, hi, rng);
        const t = rng.int(a, b);
        let m = Math.round(t / 3);
        if (3 * m > b) m--;
        if (3 * m < a) m++;
        if (3 * m > b || m < 1) return uniformValidLength(task, lo, hi, rng);
        return 3 * m;
      },
      prompt(n, rng) {
        const m = n / 3;
        const streams = [bitsWithoutTie(m, rng), bitsWithoutTie(m, rng), bitsWithoutTie(m, rng)];
        const out: number[] = [];
        for (let j = 0; j < n; j++) out.push(streams[j % 3][Math.floor(j / 3)]);
        return out;
      },
      solve(p) {
        if (p.length === 0 || p.length % 3 !== 0) {
          throw new UserError('task bin_majority_interleave: the input length must be a positive multiple of 3');
        }
        return [0, 1, 2].map((s) => bitMajority(p.filter((_, j) => j % 3 === s), `stream ${s}`));
      },
    }),
    ceTask({
      name: 'unique_copy',
      description: 'Copy a sequence of distinct numbers 0-149',
      symbols: NUMBERS,
      nPositions: 303,
      minLength: 1,
      maxLength: 150,
      lengthMeaning: 'distinct input numbers',
      eos: true,
      prompt: distinctNumbers,
      solve(p) {
        requireDistinct('unique_copy', p);
        return [...p];
      },
    }),
    ceTask({
      name: 'unique_reverse',
      description: 'Reverse a sequence of distinct numbers 0-149',
      symbols: NUMBERS,
      nPositions: 303,
      minLength: 1,
      maxLength: 150,
      lengthMeaning: 'distinct input numbers',
      eos: true,
      prompt: distinctNumbers,
      solve(p) {
        requireDistinct('unique_reverse', p);
        return [...p].reverse();
      },
    }),
    ceTask({
      name: 'sort',
      description: 'Sort distinct numbers 0-149 ascending',
      symbols: NUMBERS,
      nPositions: 303,
      minLength: 1,
      maxLength: 150,
      lengthMeaning: 'distinct input numbers',
      eos: true,
      prompt: distinctNumbers,
      solve(p) {
        requireDistinct('sort', p);
        return [...p].sort((a, b) => a - b);
      },
    }),
    ceTask({
      name: 'unique_bigram_copy',
      description: 'Copy a sequence over 16 symbols whose adjacent bigrams are all distinct',
      symbols: numberSymbols(BIGRAM_VOCAB),
      nPositions: 303,
      minLength: 1,
      maxLength: 150,
      lengthMeaning: 'input tokens',
      eos: true,
      prompt: uniqueBigramString,
      solve(p) {
        requireUniqueBigrams(p);
        return [...p];
      },
    }),
    ceTask({
      name: 'repeat_copy',
      description: 'Copy a string over {a, b}',
      symbols: ['a', 'b'],
      nPositions: 303,
      minLength: 1,
      maxLength: 150,
      lengthMeaning: 'input tokens',
      eos: true,
      prompt: (n, rng) => Array.from({ length: n }, () => rng.int(0, 1)),
      solve: (p) => [...p],
    }),
    ceTask({
      name: 'count',
      description: 'Count from s to e: the prompt is s e, the answer s, s+1, ..., e',
      symbols: NUMBERS,
      nPositions: 155,
      minLength: 2,
      maxLength: 150,
      lengthMeaning: 'numbers counted (e - s + 1)',
      eos: true,
      prompt(n, rng) {
        const s = rng.int(0, 150 - n);
        return [s, s + n - 1];
      },
      solve(p) {
        if (p.length !== 2 || p[1] <= p[0]) throw new UserError('task count: the prompt must be two numbers s e with s < e');
        return Array.from({ length: p[1] - p[0] + 1 }, (_, i) => p[0] + i);
      },
      lengthOf: (p) => (p.length === 2 ? p[1] - p[0] + 1 : p.length),
    }),
    ceTask({
      name: 'addition',
      description: 'Binary addition A + B, the sum most-significant bit first',
      symbols: ['0', '1', '+'],
      nPositions: 302,
      minLength: 4,
      maxLength: 150,
      lengthMeaning: 'tokens of A + B',
      eos: true,
      prompt(n, rng) {
        const la = rng.int(1, n - 2);
        return [...operand(la, rng), PLUS, ...operand(n - 1 - la, rng)];
      },
      solve: binarySum,
    }),
  ];
}
