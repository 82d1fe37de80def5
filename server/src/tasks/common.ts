// Pieces shared by the algorithmic (CE) and formal-language (BCE) task definitions.
import { UserError } from '../util/errors';
import type { Rng } from '../util/rng';
import type { TaskSpecial } from './types';

export const SPECIAL_TOKENS = ['<bos>', '<sep>', '<eos>', '<pad>'] as const;

/** Vocabulary = normal symbols in id order, then the four special tokens (tasks-and-models.md 1.1). */
export function makeVocab(symbols: readonly string[]): { vocab: string[]; special: TaskSpecial } {
  const n = symbols.length;
  return { vocab: [...symbols, ...SPECIAL_TOKENS], special: { bos: n, sep: n + 1, eos: n + 2, pad: n + 3 } };
}

export function numberSymbols(count: number): string[] {
  return Array.from({ length: count }, (_, i) => String(i));
}

/** Uniform over the valid lengths in [max(min, lo), min(max, hi)]; a UserError when there is none. */
export function uniformValidLength(
  task: { name: string; minLength: number; maxLength: number; validLength(n: number): boolean },
  lo: number,
  hi: number,
  rng: Rng,
): number {
  const a = Math.max(task.minLength, Math.ceil(lo));
  const b = Math.min(task.maxLength, Math.floor(hi));
  const valid: number[] = [];
  for (let n = a; n <= b; n++) if (task.validLength(n)) valid.push(n);
  if (valid.length === 0) {
    throw new UserError(
      `task ${task.name} has no valid length in ${lo}-${hi} (lengths ${task.minLength}-${task.maxLength}, ${describeValid(task)})`,
    );
  }
  return rng.choice(valid);
}

function describeValid(task: { validLength(n: number): boolean; minLength: number }): string {
  const first: number[] = [];
  for (let n = task.minLength; first.length < 4 && n < task.minLength + 40; n++) if (task.validLength(n)) first.push(n);
  return `valid lengths start ${first.join(', ')}, ...`;
}

export function checkLength(task: { name: string; validLength(n: number): boolean; lengthMeaning: string }, n: number): void {
  if (!Number.isInteger(n) || !task.validLength(n)) {
    throw new UserError(`task ${task.name}: ${n} is not a valid length (${task.lengthMeaning})`);
  }
}

/** Split `total` into `parts` non-negative parts by sequential uniform draws, the last part taking the rest. */
export function sequentialSplit(total: number, parts: number, rng: Rng): number[] {
  const out: number[] = [];
  let rest = total;
  for (let i = 0; i < parts - 1; i++) {
    const k = rng.int(0, rest);
    out.push(k);
    rest -= k;
  }
  out.push(rest);
  return out;
}

/** `count0` copies of a and the rest b, shuffled. */
export function shuffledMix(length: number, countA: number, a: number, b: number, rng: Rng): number[] {
  const out: number[] = [];
  for (let i = 0; i < length; i++) out.push(i < countA ? a : b);
  return rng.shuffle(out);
}
