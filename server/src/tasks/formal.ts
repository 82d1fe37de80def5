// The formal languages (BCE objective, tasks-and-models.md section 3): `<bos> s <eos>`; at every position whose
// input is neither <eos> nor <pad> the label is the set of tokens that may follow the prefix (the <eos> bit
// meaning "the string may end here"), over the whole vocabulary and unshifted.
import { UserError } from '../util/errors';
import type { Rng } from '../util/rng';
import { checkLength, makeVocab, sequentialSplit, shuffledMix, uniformValidLength } from './common';
import type { Task, TaskLabels } from './types';

/** What may follow a prefix: symbol ids (alphabet order) and whether the string may end. */
interface Allowed {
  next: number[];
  end: boolean;
}

const DEAD: Allowed = { next: [], end: false };

interface LangSpec {
  /** Task name without the `bce_` prefix. */
  lang: string;
  description: string;
  /** The alphabet, sorted (ids in this order). */
  alphabet: string[];
  minLength: number;
  valid: (n: number) => boolean;
  validText: string;
  /** A random member of length n (n valid). */
  generate: (n: number, rng: Rng) => number[];
  /** allowed[i] = what may follow the first i symbols, for i = 0..s.length (DEAD once the prefix left the language). */
  scan: (s: readonly number[]) => Allowed[];
}

const BCE_MAX = 150; // n + 2 <= 152 positions

function bceTask(spec: LangSpec): Task {
  const { vocab, special } = makeVocab(spec.alphabet);
  const name = `bce_${spec.lang}`;
  const V = vocab.length;
  const symbolsOf = (seq: readonly number[]): number[] => {
    if (seq.length === 0 || seq[0] !== special.bos) throw new UserError(`task ${name}: a sequence must start with <bos>`);
    let end = seq.length;
    for (let i = 1; i < seq.length; i++) {
      if (seq[i] === special.eos || seq[i] === special.pad) {
        end = i;
        break;
      }
    }
    const s = seq.slice(1, end);
    for (const t of s) {
      if (!Number.isInteger(t) || t < 0 || t >= spec.alphabet.length) {
        throw new UserError(`task ${name}: ${vocab[t] ?? String(t)} is not a symbol of the language`);
      }
    }
    return s;
  };
  const task: Task = {
    name,
    objective: 'bce',
    description: spec.description,
    vocab,
    special,
    nPositions: 152,
    minLength: spec.minLength,
    maxLength: BCE_MAX,
    lengthMeaning: `string length (${spec.validText})`,
    validLength: (n) => Number.isInteger(n) && n >= spec.minLength && n <= BCE_MAX && spec.valid(n),
    drawLength: (lo, hi, rng) => uniformValidLength(task, lo, hi, rng),
    generate(n, rng) {
      checkLength(task, n);
      const s = spec.generate(n, rng);
      return [special.bos, ...s, special.eos];
    },
    scoredPositions(seq) {
      // Every position whose input is neither <eos> nor <pad>: <bos> and each symbol.
      return Array.from({ length: symbolsOf(seq).length + 1 }, (_, i) => i);
    },
    labels(seq): TaskLabels {
      const s = symbolsOf(seq);
      const allowed = spec.scan(s);
      const rows = allowed.map((a) => {
        const row = new Uint8Array(V);
        for (const t of a.next) row[t] = 1;
        if (a.end) row[special.eos] = 1;
        return row;
      });
      return { objective: 'bce', positions: rows.map((_, i) => i), rows };
    },
    maxOffset: (seqLength) => Math.max(0, 152 - seqLength),
    lengthOf: (seq) => symbolsOf(seq).length,
  };
  return task;
}

/** Runs a deterministic automaton over s: `allowed(state)`; `step(state, sym)` returns null when s leaves the language. */
function scanWith<S>(init: S, step: (state: S, sym: number) => S | null, allowed: (state: S) => Allowed) {
  return (s: readonly number[]): Allowed[] => {
    const out: Allowed[] = [];
    let state: S | null = init;
    out.push(allowed(init));
    for (const sym of s) {
      if (state !== null && allowed(state).next.includes(sym)) state = step(state, sym);
      else state = null;
      out.push(state === null ? DEAD : allowed(state));
    }
    return out;
  };
}

const even = (n: number): boolean => n % 2 === 0;
const A = 0;
const B = 1;

/** Dyck-1 with depth bound d over a (open) and b (close). */
function dyck(d: number): LangSpec {
  return {
    lang: `D${d}`,
    description: `Dyck-1 with depth at most ${d} (a opens, b closes)`,
    alphabet: ['a', 'b'],
    minLength: 2,
    valid: even,
    validText: 'even',
    generate(n, rng) {
      const s: number[] = [];
      let depth = 0;
      // Alternate runs of a and b, starting with a; a-runs never overshoot the bound or the length.
      while (s.length + depth < n) {
        const up = rng.int(1, Math.min(d - depth, Math.floor((n - s.length - depth) / 2)));
        for (let i = 0; i < up; i++) s.push(A);
        depth += up;
        if (s.length + depth >= n) break;
        const down = rng.int(1, depth);
        for (let i = 0; i < down; i++) s.push(B);
        depth -= down;
      }
      while (depth-- > 0) s.push(B);
      return s;
    },
    scan: scanWith(
      0,
      (depth, sym) => (sym === A ? depth + 1 : depth - 1),
      (depth) => (depth === 0 ? { next: [A], end: true } : depth === d ? { next: [B], end: false } : { next: [A, B], end: false }),
    ),
  };
}

const ANY = (): boolean => true;
const ZERO_ONE = [0, 1];

/** Tomita 3 DFA: 0 start/safe, 1 odd run of 1s, 2 odd 0-run after an odd 1-run (rejecting), 3 even such 0-run. */
function tomita3Step(state: number, sym: number): number | null {
  switch (state) {
    case 0:
      return sym === 0 ? 0 : 1;
    case 1:
      return sym === 0 ? 2 : 0;
    case 2:
      return sym === 0 ? 3 : null;
    default:
      return sym === 0 ? 2 : 1;
  }
}

function tomita3Generate(n: number, rng: Rng): number[] {
  const s: number[] = [];
  let state = 0;
  const push = (sym: number): void => {
    s.push(sym);
    state = tomita3Step(state, sym) ?? -1;
  };
  while (s.length < n) {
    const r = n - s.length;
    const sym = rng.bool() ? 1 : 0;
    // A 0-run after an odd 1-run must have even length. The original applied this only right after the 1-run
    // and then checked the string with the DFA; coin flips that repeat the symbol extend the run, so the rule is
    // applied here to every 0-run that extends such a run, and every string produced is a member.
    const constrained = sym === 0 && (state === 1 || state === 3);
    if (constrained && r === 1) {
      push(1);
      continue;
    }
    const lengths: number[] = [];
    for (let k = constrained ? 2 : 1; k <= r; k += constrained ? 2 : 1) lengths.push(k);
    const k = lengths[rng.weighted(lengths.map((len) => r + 1 - len))];
    for (let i = 0; i < k; i++) push(sym);
  }
  return s;
}

function languages(): LangSpec[] {
  return [
    {
      lang: 'tomita1',
      description: 'Tomita 1: 1*',
      alphabet: ['0', '1'],
      minLength: 1,
      valid: ANY,
      validText: 'any',
      generate: (n) => new Array<number>(n).fill(1),
      scan: scanWith(0, () => 0, () => ({ next: [1], end: true })),
    },
    {
      lang: 'tomita2',
      description: 'Tomita 2: (10)*',
      alphabet: ['0', '1'],
      minLength: 2,
      valid: even,
      validText: 'even',
      generate: (n) => Array.from({ length: n }, (_, i) => (i % 2 === 0 ? 1 : 0)),
      scan: scanWith(0, (_s, sym) => sym, (last) => (last === 1 ? { next: [0], end: false } : { next: [1], end: true })),
    },
    {
      lang: 'tomita3',
      description: 'Tomita 3: no odd run of 1s directly followed by an odd run of 0s',
      alphabet: ['0', '1'],
      minLength: 1,
      valid: ANY,
      validText: 'any',
      generate: tomita3Generate,
      scan: scanWith(0, tomita3Step, (state) => (state === 2 ? { next: [0], end: false } : { next: ZERO_ONE, end: true })),
    },
    {
      lang: 'tomita4',
      description: 'Tomita 4: no 000',
      alphabet: ['0', '1'],
      minLength: 1,
      valid: ANY,
      validText: 'any',
      generate(n, rng) {
        const s: number[] = [];
        while (s.length < n) {
          const twoZeros = s.length >= 2 && s[s.length - 1] === 0 && s[s.length - 2] === 0;
          s.push(twoZeros ? 1 : rng.int(0, 1)); // a 0 that would make 000 is redrawn, which forces a 1
        }
        return s;
      },
      scan: scanWith(
        0,
        (zeros, sym) => (sym === 0 ? zeros + 1 : 0),
        (zeros) => (zeros === 2 ? { next: [1], end: true } : { next: ZERO_ONE, end: true }),
      ),
    },
    {
      lang: 'tomita5',
      description: 'Tomita 5: even number of 0s and even number of 1s',
      alphabet: ['0', '1'],
      minLength: 2,
      valid: even,
      validText: 'even',
      generate(n, rng) {
        const zeros = 2 * rng.int(0, n / 2);
        return shuffledMix(n, zeros, 0, 1, rng);
      },
      scan: scanWith(
        [0, 0] as [number, number],
        ([z, o], sym): [number, number] => (sym === 0 ? [z + 1, o] : [z, o + 1]),
        ([z, o]) => ({ next: ZERO_ONE, end: z % 2 === 0 && o % 2 === 0 }),
      ),
    },
    {
      lang: 'tomita6',
      // The original generator only produced odd lengths >= 3 (tasks-and-models.md 3 calls it a quirk); the
      // language has members of every length >= 2, so every such length is valid here.
      description: 'Tomita 6: (#0 - #1) divisible by 3',
      alphabet: ['0', '1'],
      minLength: 2,
      valid: (n) => n >= 2,
      validText: 'any length >= 2',
      generate(n, rng) {
        const counts: number[] = [];
        for (let z = 0; z <= n; z++) if ((((2 * z - n) % 3) + 3) % 3 === 0) counts.push(z);
        return shuffledMix(n, rng.choice(counts), 0, 1, rng);
      },
      scan: scanWith(
        0,
        (diff, sym) => (diff + (sym === 0 ? 1 : 2)) % 3,
        (diff) => ({ next: ZERO_ONE, end: diff === 0 }),
      ),
    },
    {
      lang: 'tomita7',
      description: 'Tomita 7: 0*1*0*1*',
      alphabet: ['0', '1'],
      minLength: 1,
      valid: ANY,
      validText: 'any',
      generate(n, rng) {
        const parts = rng.shuffle(sequentialSplit(n, 4, rng));
        const s: number[] = [];
        parts.forEach((len, i) => {
          for (let j = 0; j < len; j++) s.push(i % 2);
        });
        return s;
      },
      // Blocks counted from 1 with an implicit leading 0-block; every change of symbol starts the next block.
      scan: scanWith(
        [1, 0] as [number, number],
        ([block, last], sym): [number, number] => [sym === last ? block : block + 1, sym],
        ([block]) => (block === 4 ? { next: [1], end: true } : { next: ZERO_ONE, end: true }),
      ),
    },
    {
      lang: 'aastar',
      description: '(aa)*',
      alphabet: ['a'],
      minLength: 2,
      valid: even,
      validText: 'even',
      generate: (n) => new Array<number>(n).fill(0),
      scan: scanWith(0, (k) => k + 1, (k) => ({ next: [0], end: k % 2 === 0 })),
    },
    {
      lang: 'aaaastar',
      description: '(aaaa)*',
      alphabet: ['a'],
      minLength: 4,
      valid: (n) => n % 4 === 0,
      validText: 'a multiple of 4',
      generate: (n) => new Array<number>(n).fill(0),
      scan: scanWith(0, (k) => k + 1, (k) => ({ next: [0], end: k % 4 === 0 })),
    },
    {
      lang: 'ababstar',
      description: '(abab)*',
      alphabet: ['a', 'b'],
      minLength: 4,
      valid: (n) => n % 4 === 0,
      validText: 'a multiple of 4',
      generate: (n) => Array.from({ length: n }, (_, i) => i % 2),
      scan: scanWith(0, (k) => k + 1, (k) => ({ next: [k % 2], end: k % 4 === 0 })),
    },
    {
      lang: 'abcde',
      description: 'a+b+c+d+e+',
      alphabet: ['a', 'b', 'c', 'd', 'e'],
      minLength: 5,
      valid: ANY,
      validText: 'at least 5',
      generate(n, rng) {
        const parts = rng.shuffle(sequentialSplit(n - 5, 5, rng));
        const s: number[] = [];
        parts.forEach((extra, letter) => {
          for (let j = 0; j <= extra; j++) s.push(letter);
        });
        return s;
      },
      scan: scanWith(
        -1,
        (_last, sym) => sym,
        (last) => (last < 0 ? { next: [0], end: false } : last === 4 ? { next: [4], end: true } : { next: [last, last + 1], end: false }),
      ),
    },
    {
      lang: 'ab_d_bc',
      description: '[ab]* d [bc]*',
      alphabet: ['a', 'b', 'c', 'd'],
      minLength: 1,
      valid: ANY,
      validText: 'any',
      generate(n, rng) {
        const left = rng.int(0, n - 1);
        const right = n - 1 - left;
        return [...shuffledMix(left, rng.int(0, left), 0, 1, rng), 3, ...shuffledMix(right, rng.int(0, right), 1, 2, rng)];
      },
      scan: scanWith(
        false,
        (seenD, sym) => seenD || sym === 3,
        (seenD) => (seenD ? { next: [1, 2], end: true } : { next: [0, 1, 3], end: false }),
      ),
    },
    {
      lang: '012_0_2',
      description: '[012]* 0 2*',
      alphabet: ['0', '1', '2'],
      minLength: 1,
      valid: ANY,
      validText: 'any',
      generate(n, rng) {
        const prefix = rng.int(0, n - 1);
        const s = Array.from({ length: prefix }, () => rng.int(0, 2));
        s.push(0);
        while (s.length < n) s.push(2);
        return s;
      },
      // State: the last symbol other than 2 (-1 before any).
      scan: scanWith(
        -1,
        (lastNon2, sym) => (sym === 2 ? lastNon2 : sym),
        (lastNon2) => ({ next: [0, 1, 2], end: lastNon2 === 0 }),
      ),
    },
  ];
}

const FIXED = new Map<string, Task>();

export function formalTask(name: string): Task | undefined {
  const m = /^bce_D([1-9]\d{0,2})$/.exec(name);
  if (m) {
    const d = Number(m[1]);
    return bceTask(dyck(d));
  }
  if (FIXED.size === 0) for (const spec of languages()) FIXED.set(`bce_${spec.lang}`, bceTask(spec));
  return FIXED.get(name);
}

export function formalTaskNames(): string[] {
  if (FIXED.size === 0) formalTask('bce_tomita1');
  return ['bce_D2', 'bce_D3', 'bce_D4', 'bce_D12', ...FIXED.keys()];
}
