// Attention and logit primitives (d-rasp.md 3.5) and rounding of what is left (3.6, cheap version).
//
// Greedy: visit every select and projection still carrying a matrix, in program order (layer by layer, head by
// head, logits last), and accept the first candidate of the library whose screening match is >= the threshold;
// accepted replacements stay, so the effect is cumulative. `uniform` comes first, so the search always tries to
// delete the term first (dead-code elimination then removes the select or projection).
//
// Rounding: the paper trains each remaining matrix with an L1 and then a round-to-integer penalty (6000 AdamW
// steps x 3 lambdas). That is far beyond our time budget, so we quantize instead: M = s·round(A/s) with the unit
// s = the power of two nearest max|A|/K, trying K = 1, 2, 3, 5, 10, 20 levels per sign, coarsest first, and keeping
// the first that passes the same acceptance check. Entries below s/2 become 0, so the result is
// sparse and takes at most 2K+1 distinct values (integer multiples of s).
import { inferBases } from '../../program/bases';
import type { Basis, Op, Program, Statement } from '../../program/types';
import { cloneProgram, eliminateDeadCode, freshMatrixName } from './graph';
import { type OpCandidate, candidateLabel, keyOnlyCandidates, projectCandidates, selectCandidates } from './library';
import type { Session } from './session';

type Unit = Statement & { kind: 'select' | 'project' };

function matrixUnits(p: Program): string[] {
  return p.statements
    .filter((s): s is Unit => (s.kind === 'select' || s.kind === 'project') && s.op.kind === 'matrix' && !s.specialOp)
    .map((s) => s.name);
}

function withOp(p: Program, name: string, op: Op, specialOp?: Op): Program {
  const out = cloneProgram(p);
  out.statements = p.statements.map((s) => {
    if (s.name !== name || (s.kind !== 'select' && s.kind !== 'project')) return s;
    const { specialOp: _old, ...rest } = s;
    return { ...rest, op, ...(specialOp ? { specialOp } : {}) } as Statement;
  });
  return out;
}

export function unitCandidates(p: Program, s: Unit, bases: Map<string, Basis>): OpCandidate[] {
  const ids = p.header.special;
  if (s.kind === 'project') {
    return projectCandidates(s.inp !== undefined ? bases.get(s.inp) : undefined, p.header.vocab.length, ids);
  }
  const k = bases.get(s.k) as Basis;
  if (s.q === undefined) return keyOnlyCandidates(k, ids);
  return selectCandidates(bases.get(s.q) as Basis, k, ids);
}

/** Greedy primitive replacement; returns the program and the number of replaced ops. */
export async function greedyPrimitives(session: Session, start: Program, threshold: number): Promise<{ program: Program; replaced: number }> {
  let program = start;
  let replaced = 0;
  const units = matrixUnits(program);
  for (const [i, name] of units.entries()) {
    if (session.outOfTime(`attention and logits, ${name}`)) break;
    session.report('primitives: attention and logits', i / Math.max(units.length, 1), name);
    const s = program.statements.find((t) => t.name === name);
    if (!s || (s.kind !== 'select' && s.kind !== 'project') || s.op.kind !== 'matrix') continue;
    const bases = inferBases(program);
    for (const cand of unitCandidates(program, s, bases)) {
      const trial = eliminateDeadCode(withOp(program, name, cand.op, cand.specialOp));
      const match = await session.evaluate(trial, threshold);
      if (match >= threshold) {
        program = trial;
        replaced++;
        session.steps.push({ stage: 'attention', line: name, choice: candidateLabel(cand), match });
        break;
      }
    }
  }
  session.report('primitives: attention and logits', 1);
  return { program, replaced };
}

/**
 * The power of two closest to x > 0 (in log scale). Powers of two keep rounded matrices exact everywhere: sums of
 * their multiples are exact in float64, so ties between logits stay ties after the program is printed and read back.
 */
export function niceUnit(x: number): number {
  return 2 ** Math.round(Math.log2(x));
}

/** s·round(A/s); with a power-of-two unit every entry is exact in float32, float64 and its printed decimal. */
export function quantize(data: ArrayLike<number>, unit: number): Float64Array {
  const out = new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const q = Math.round(data[i] / unit);
    out[i] = q === 0 ? 0 : q * unit;
  }
  return out;
}

export const ROUND_LEVELS = [1, 2, 3, 5, 10, 20];

/** Rounds the remaining matrices; returns the program and the names of the matrices that were rounded. */
export async function roundMatrices(session: Session, start: Program, threshold: number): Promise<{ program: Program; rounded: Set<string> }> {
  let program = start;
  const rounded = new Set<string>();
  const units = matrixUnits(program);
  for (const [i, name] of units.entries()) {
    if (session.outOfTime(`rounding, ${name}`)) break;
    session.report('primitives: rounding', i / Math.max(units.length, 1), name);
    const s = program.statements.find((t) => t.name === name);
    if (!s || (s.kind !== 'select' && s.kind !== 'project') || s.op.kind !== 'matrix') continue;
    const m = program.matrices.get(s.op.ref);
    if (!m) continue;
    let maxAbs = 0;
    for (const v of m.data) maxAbs = Math.max(maxAbs, Math.abs(v));
    if (maxAbs === 0) continue;
    const grid = [...new Set(ROUND_LEVELS.map((k) => niceUnit(maxAbs / k)))].sort((a, b) => b - a);
    for (const unit of grid) {
      const data = quantize(m.data, unit);
      const next = cloneProgram(program);
      const ref = freshMatrixName(program, `${s.op.ref}_r`);
      next.matrices.set(ref, { rows: m.rows, cols: m.cols, data });
      const trial = eliminateDeadCode(withOp(next, name, { kind: 'matrix', ref }));
      const match = await session.evaluate(trial, threshold);
      if (match >= threshold) {
        program = trial;
        rounded.add(ref);
        let nz = 0;
        for (const v of data) if (v !== 0) nz++;
        session.steps.push({ stage: 'round', line: name, choice: `unit ${unit}, ${nz}/${data.length} non-zero`, match });
        break;
      }
    }
  }
  session.report('primitives: rounding', 1);
  return { program, rounded };
}
