// The task registry: every task of the paper by name (tasks-and-models.md sections 2-3), the folder-name
// convention of its saved models, and length-binned sampling.
import { basename } from 'node:path';
import { UserError } from '../util/errors';
import { Rng, deriveSeed } from '../util/rng';
import { algorithmicTasks } from './algorithmic';
import { formalTask, formalTaskNames } from './formal';
import type { Task } from './types';

export type { Task, TaskLabels, TaskSpecial } from './types';
export { decisions, sequenceCorrect, sequenceMatches, mismatchPositions, argmaxRow } from './score';
export type { Decisions } from './score';

const ALGORITHMIC = new Map<string, Task>();

function algorithmic(): Map<string, Task> {
  if (ALGORITHMIC.size === 0) for (const t of algorithmicTasks()) ALGORITHMIC.set(t.name, t);
  return ALGORITHMIC;
}

/** Known task names (Dyck is listed with the paper's depths; `bce_D<n>` works for any n from 1 to 999). */
export function taskNames(): string[] {
  return [...algorithmic().keys(), ...formalTaskNames()];
}

function lookup(name: string): Task | undefined {
  return algorithmic().get(name) ?? formalTask(name);
}

/** The task called `name`; a UserError listing the known tasks otherwise. */
export function getTask(name: string): Task {
  const task = lookup(name);
  if (!task) {
    throw new UserError(`unknown task "${name}"; known tasks: ${taskNames().join(', ')} (bce_D<n> for any depth n >= 1)`);
  }
  return task;
}

/**
 * The task a model folder is named after, by the paper's convention `<task>-<prefix><L>l<H>h<D>d...`
 * (the part before the first "-"), or a bare task name; undefined when that is not a known task.
 */
export function taskFromFolderName(dirName: string): string | undefined {
  const base = basename(dirName.replace(/[\\/]+$/, ''));
  const candidate = base.split('-')[0];
  return candidate && lookup(candidate) ? candidate : undefined;
}

/** Parses "0-50,51-100" (or "7", meaning 7-7) into inclusive ranges. */
export function parseLengthBins(text: string): [number, number][] {
  const bins: [number, number][] = [];
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new UserError(`bad length range "${part.trim()}": expected LO-HI, e.g. 0-50,51-100`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new UserError(`bad length range "${part.trim()}": ${hi} is below ${lo}`);
    bins.push([lo, hi]);
  }
  return bins;
}

export const DEFAULT_BINS: [number, number][] = [
  [0, 50],
  [51, 100],
  [101, 150],
];

/**
 * `perBin` random sequences for each inclusive length range, with lengths distributed as in the paper's test
 * sets. Deterministic in `seed`; each bin has its own stream, so a bin's samples do not depend on the others.
 */
export function sampleBins(task: Task, bins: readonly [number, number][], perBin: number, seed: number): number[][][] {
  return bins.map(([lo, hi], i) => {
    const rng = new Rng(deriveSeed(seed, i, lo, hi));
    const out: number[][] = [];
    for (let k = 0; k < perBin; k++) out.push(task.generate(task.drawLength(lo, hi, rng), rng));
    return out;
  });
}

/** Token strings of a sequence, space-separated (the CLI `--input` format). */
export function formatSequence(task: Task, seq: readonly number[]): string {
  return seq.map((t) => task.vocab[t] ?? `?${t}`).join(' ');
}

/** Ids of space-separated token strings; a UserError naming the first unknown token. */
export function parseSequence(task: Task, text: string): number[] {
  const ids: number[] = [];
  for (const tok of text.trim().split(/\s+/).filter((t) => t.length > 0)) {
    const id = task.vocab.indexOf(tok);
    if (id < 0) throw new UserError(`task ${task.name} has no token "${tok}" (vocabulary: ${task.vocab.join(' ')})`);
    ids.push(id);
  }
  return ids;
}
