// MLP matching (d-rasp.md 5.1-5.3): for each opaque MLP line, fit the primitive library to its exact output by
// least squares, replace the line by the best primitive that keeps the program faithful, re-base its readers by
// the readout C, or keep it opaque with an input->effect table. Every MLP line gets neuron provenance either way.
import { inferBases } from '../../program/bases';
import type { Basis, ElementwiseFn, NeuronRef, OpaqueMlp, Program, Statement } from '../../program/types';
import { cloneProgram, eliminateDeadCode, freshMatrixName, freshName, readsOf } from './graph';
import { type Dense, fromMatrix, fvu, hstack, leastSquares, matmul, toMatrix, transpose, varianceSum } from './linalg';
import { type MlpCandidate, candidateSize, features, linearRest, mlpCandidates } from './features';
import { attributeNeurons, neuronDetails } from './neurons';
import { runOpaqueMlp } from './opaque';
import { RebaseError, rebaseReaders } from './rewrite';
import type { Session } from './session';
import type { CandidateScore, EffectRow, MlpExplanation, ProgramRunner } from './types';

export interface MlpStageOptions {
  inputs: readonly (readonly number[])[];
  runner: ProgramRunner;
  /** Absolute match a replacement must keep (max of the paper's 0.9 and the target floor). */
  accept: number;
  maxFvu: number;
  evaluations: number;
  maxRows: number;
  maxProduct: number;
  tableRows: number;
  neuronCoverage: number;
  maxNeurons: number;
}

/** Stacks the first `maxRows` positions of every sequence's value into one rows x size matrix per variable. */
export function collectRows(
  runner: ProgramRunner,
  program: Program,
  inputs: readonly (readonly number[])[],
  names: readonly string[],
  maxRows: number,
): Dense[] {
  const values = runner.values(program, inputs, names);
  return names.map((name) => {
    const perSeq = values.get(name);
    if (!perSeq || perSeq.length === 0) throw new Error(`the runner returned no values for ${name}`);
    const cols = perSeq[0].cols;
    let rows = 0;
    for (const v of perSeq) rows += v.rows;
    rows = Math.min(rows, maxRows);
    const data = new Float64Array(rows * cols);
    let at = 0;
    for (const v of perSeq) {
      const take = Math.min(v.rows, rows - at);
      if (take <= 0) break;
      data.set(v.data.subarray(0, take * cols), at * cols);
      at += take;
    }
    return { rows, cols, data };
  });
}

/**
 * Source neurons for every opaque MLP line that has none yet (a program the primitives stage left alone: the
 * faithful twin, one over its size limit, one emitted after the budget), measured as the stage measures them: the
 * line's inputs on `inputs` (at most `maxRows` positions), attributeNeurons with the stage's defaults.
 */
export function withNeuronProvenance(program: Program, runner: ProgramRunner, inputs: readonly (readonly number[])[], maxRows = 4000): Program {
  const lines = program.statements.filter((s) => s.kind === 'elementwise' && s.fn.name === 'mlp' && !s.provenance?.neurons?.length);
  if (lines.length === 0 || inputs.length === 0) return program;
  const out = cloneProgram(program);
  const found = new Map<string, NeuronRef[]>();
  for (const stmt of lines) {
    if (stmt.kind !== 'elementwise' || stmt.fn.name !== 'mlp') continue;
    const mlp = program.mlps.get(stmt.fn.ref);
    if (!mlp) continue;
    const xs = collectRows(runner, program, inputs, stmt.inputs, maxRows);
    found.set(stmt.name, attributeNeurons(mlp, xs).neurons);
  }
  out.statements = program.statements.map((s) => {
    const neurons = found.get(s.name);
    return neurons && neurons.length > 0 ? { ...s, provenance: { ...(s.provenance ?? { layer: 0, head: null, paths: {} }), mlp: true, neurons } } : s;
  });
  return out;
}

function featureKey(f: Dense, extra: string): string {
  let h = 0x811c9dc5;
  const view = new DataView(new ArrayBuffer(8));
  for (const v of f.data) {
    view.setFloat64(0, v);
    for (let b = 0; b < 8; b++) h = Math.imul(h ^ view.getUint8(b), 0x01000193) >>> 0;
  }
  return `${f.cols}:${h}:${extra}`;
}

function identifierPart(label: string, index: number): string {
  return /^[A-Za-z0-9_]+$/.test(label) ? label : String(index);
}

/** The new line's variable name, after the paper's prefixes (d-rasp.md 2.2), made readable where it can be. */
function primitiveName(fn: ElementwiseFn, inputs: readonly string[], bases: readonly Basis[]): string {
  const x = inputs.join('_');
  switch (fn.name) {
    case 'harden':
      return `hardened_${x}`;
    case 'sharpen':
      return `sharpened_${x}`;
    case 'erase':
      return `erased_${x}`;
    case 'exists':
      return `is_${identifierPart(bases[0].labels[fn.index], fn.index)}_exists_${x}`;
    case 'forall':
      return `is_pure_${x}`;
    case 'equal':
      return `is_uniform_${x}`;
    case 'balance':
      return `is_${fn.which}_balance_${x}`;
    case 'diff':
      return `diff_${identifierPart(bases[0].labels[fn.i], fn.i)}${identifierPart(bases[0].labels[fn.j], fn.j)}_${x}`;
    case 'count_diff':
      return `count_diff_${identifierPart(bases[0].labels[fn.i], fn.i)}${identifierPart(bases[0].labels[fn.j], fn.j)}_${x}`;
    case 'cartesian':
      return inputs.join('_x_');
    default:
      return `${fn.name}_${x}`;
  }
}

/** True when the variable is (a function of) an aggregate: the diff/balance primitives need a mixture. */
function viaAttention(program: Program, name: string): boolean {
  const byName = new Map(program.statements.map((s) => [s.name, s]));
  const stack = [name];
  const seen = new Set<string>();
  while (stack.length > 0) {
    const n = stack.pop() as string;
    if (seen.has(n)) continue;
    seen.add(n);
    const s = byName.get(n);
    if (!s) continue;
    if (s.kind === 'aggregate') return true;
    if (s.kind === 'elementwise') stack.push(...s.inputs);
  }
  return false;
}

function specialIdSet(program: Program): Set<number> {
  const s = program.header.special;
  return new Set([s.bos, s.sep, s.eos, s.pad].filter((v): v is number => v !== undefined));
}

/** Replaces MLP line `stmt` by candidate `cand` with readout `c`; throws RebaseError when a reader cannot follow. */
export function replaceMlpLine(
  program: Program,
  stmt: Statement & { kind: 'elementwise' },
  cand: MlpCandidate,
  c: Dense,
  bases: readonly Basis[],
  neurons: NeuronRef[] | undefined,
): { program: Program; name: string } {
  const rest = linearRest(cand, stmt.inputs.length);
  if (rest.length > 0) return replaceAdditive(program, stmt, cand, c, bases, neurons, rest);
  if (cand.kind === 'linear') throw new RebaseError('linear without inputs');
  const tag = cand.kind === 'alias' ? 'noop' : cand.fn.name;
  if (cand.kind === 'alias') {
    // no_op / keep_one: no line; readers read the input directly through C·A.
    const target = stmt.inputs[cand.input];
    const without = cloneProgram(program);
    without.statements = program.statements.filter((s) => s !== stmt);
    return { program: rebaseReaders(without, stmt.name, target, c, tag), name: target };
  }
  const inputs = cand.input !== undefined ? [stmt.inputs[cand.input]] : stmt.inputs;
  const inputBases = cand.input !== undefined ? [bases[cand.input]] : bases;
  const name = freshName(program, primitiveName(cand.fn, inputs, inputBases));
  const provenance = stmt.provenance ? { ...stmt.provenance, mlp: true, ...(neurons ? { neurons } : {}) } : undefined;
  const line: Statement = {
    kind: 'elementwise',
    name,
    line: 0,
    fn: cand.fn,
    inputs: [...inputs],
    ...(provenance ? { provenance } : {}),
  };
  const next = cloneProgram(program);
  next.statements = program.statements.map((s) => (s === stmt ? line : s));
  return { program: rebaseReaders(next, stmt.name, name, c, tag), name };
}

function scaleRows(m: Dense, w: Float64Array): Dense {
  const data = Float64Array.from(m.data);
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) data[i * m.cols + j] *= w[i];
  return { rows: m.rows, cols: m.cols, data };
}

function rowBlock(c: Dense, from: number, count: number): Dense {
  return { rows: count, cols: c.cols, data: c.data.slice(from * c.cols, (from + count) * c.cols) };
}

/**
 * Additive replacement: out ≈ f(x_k)·C_f + Σ_j x_j·C_j. Only projection readers can carry the linear parts (as extra
 * projection lines of x_j, which the merge step sums into existing projections of the same input).
 */
function replaceAdditive(
  program: Program,
  stmt: Statement & { kind: 'elementwise' },
  cand: MlpCandidate,
  c: Dense,
  bases: readonly Basis[],
  neurons: NeuronRef[] | undefined,
  rest: number[],
): { program: Program; name: string } {
  const readers = program.statements.filter((s) => readsOf(s).includes(stmt.name));
  for (const r of readers) {
    if (r.kind !== 'project' || r.op.kind !== 'matrix' || r.specialOp) throw new RebaseError(`${r.name} is not a matrix projection`);
  }
  const next = cloneProgram(program);
  let offset = 0;
  let name = '';
  let statements: Statement[] = program.statements.filter((s) => s !== stmt);
  if (cand.kind === 'fn') {
    const own = candidateSize({ ...cand, additive: false }, bases);
    name = freshName(program, primitiveName(cand.fn, [stmt.inputs[cand.input ?? 0]], [bases[cand.input ?? 0]]));
    const provenance = stmt.provenance ? { ...stmt.provenance, mlp: true, ...(neurons ? { neurons } : {}) } : undefined;
    const line: Statement = { kind: 'elementwise', name, line: 0, fn: cand.fn, inputs: [stmt.inputs[cand.input ?? 0]], ...(provenance ? { provenance } : {}) };
    statements = program.statements.map((s) => (s === stmt ? line : s));
    offset = own;
  }
  const taken = new Set<string>();
  const added = new Map<string, Statement[]>();
  for (const r of readers) {
    if (r.kind !== 'project' || r.op.kind !== 'matrix') continue;
    const b = next.matrices.get(r.op.ref);
    if (!b) throw new RebaseError(`matrix ${r.op.ref} is missing`);
    let at = offset;
    const extra: Statement[] = [];
    for (const k of rest) {
      const size = bases[k].size;
      const ref = freshMatrixName(next, `${r.op.ref}_${stmt.inputs[k]}`);
      next.matrices.set(ref, toMatrix(matmul(rowBlock(c, at, size), fromMatrix(b))));
      at += size;
      const pname = freshName(program, `${r.name}_${stmt.inputs[k]}`, taken);
      taken.add(pname);
      extra.push({ kind: 'project', name: pname, line: 0, inp: stmt.inputs[k], op: { kind: 'matrix', ref }, ...(r.provenance ? { provenance: r.provenance } : {}) });
    }
    added.set(r.name, extra);
  }
  // Insert the new projections after their reader and list them in the prediction next to it.
  const out: Statement[] = [];
  for (const s of statements) {
    if (s.kind === 'prediction') {
      out.push({ ...s, terms: s.terms.flatMap((t) => [t, ...(added.get(t) ?? []).map((e) => e.name)]) });
      continue;
    }
    out.push(s);
    out.push(...(added.get(s.name) ?? []));
  }
  next.statements = out;
  if (cand.kind !== 'fn') {
    // linear: the line is gone, the readers' own rows are empty
    const kept = cloneProgram(next);
    kept.statements = next.statements.filter((s) => !readers.includes(s)).map((s) =>
      s.kind === 'prediction' ? { ...s, terms: s.terms.filter((t) => !readers.some((r) => r.name === t)) } : s,
    );
    // no line is left: the explanation names the inputs the readers now read directly
    return { program: kept, name: stmt.inputs.join('+') };
  }
  return { program: rebaseReaders(next, stmt.name, name, rowBlock(c, 0, offset), cand.fn.name), name };
}

function topEntries(values: Float64Array, labels: readonly string[], k: number): { label: string; value: number }[] {
  const idx = [...values.keys()].sort((a, b) => Math.abs(values[b]) - Math.abs(values[a])).slice(0, k);
  return idx.map((i) => ({ label: labels[i] ?? String(i), value: Math.round(values[i] * 100) / 100 }));
}

function describeInput(x: Float64Array, labels: readonly string[]): string[] {
  const out: string[] = [];
  x.forEach((v, i) => {
    if (Math.abs(v) >= 0.01) out.push(`${labels[i] ?? i}=${Math.round(v * 100) / 100}`);
  });
  return out;
}

/**
 * The linear maps through which the line's readers see its value: a projection's matrix (logits), a select's
 * matrix from its query side (key scores) or, transposed, from its key side (query scores). `complete` is false when
 * some reader sees it otherwise (an aggregate's value, an element-wise line, a named op, both sides of a select).
 */
function readerMaps(program: Program, stmt: Statement, bases: Map<string, Basis>): { maps: { name: string; map: Dense; labels: readonly string[] }[]; complete: boolean } {
  const vocab = program.header.vocab;
  const maps: { name: string; map: Dense; labels: readonly string[] }[] = [];
  let complete = true;
  for (const s of program.statements) {
    if (!readsOf(s).includes(stmt.name)) continue;
    const m = (s.kind === 'project' || s.kind === 'select') && s.op.kind === 'matrix' ? program.matrices.get(s.op.ref) : undefined;
    // a special op, or a select reading the line on both sides, sees it through more than this one map
    if (!m || ((s.kind === 'project' || s.kind === 'select') && s.specialOp) || (s.kind === 'select' && s.q === stmt.name && s.k === stmt.name)) complete = false;
    if (s.kind === 'project' && m) maps.push({ name: s.name, map: fromMatrix(m), labels: vocab });
    else if (s.kind === 'select' && m && s.q === stmt.name) maps.push({ name: s.name, map: fromMatrix(m), labels: bases.get(s.k)?.labels ?? [] });
    else if (s.kind === 'select' && m && s.k === stmt.name && s.q !== undefined) {
      maps.push({ name: s.name, map: transpose(fromMatrix(m)), labels: bases.get(s.q)?.labels ?? [] });
    } else complete = false;
  }
  return { maps, complete };
}

/**
 * Input->effect table (d-rasp.md 5.3, simplified): distinct collected inputs, evenly spread over the range of the
 * MLP's most variable effect (first row = where it pushes that entry most), each with the entries of every reader (logits of a projection, key scores of a select's
 * query side, query scores of its key side) that the MLP output moves most, centred over the samples.
 */
export function effectTable(
  program: Program,
  stmt: Statement & { kind: 'elementwise' },
  xs: Dense[],
  output: Dense,
  bases: Map<string, Basis>,
  rows: number,
): EffectRow[] {
  const readers = readerMaps(program, stmt, bases).maps;
  // Distinct inputs (to 2 decimals), in collection order.
  const seen = new Map<string, number>();
  for (let r = 0; r < output.rows; r++) {
    const key = xs.map((x) => Array.from(x.data.subarray(r * x.cols, (r + 1) * x.cols), (v) => v.toFixed(2)).join(',')).join('|');
    if (!seen.has(key)) seen.set(key, r);
  }
  const picked = [...seen.values()];
  const effects = readers.map((rd) => {
    const e = matmul({ rows: picked.length, cols: output.cols, data: Float64Array.from(picked.flatMap((r) => Array.from(output.data.subarray(r * output.cols, (r + 1) * output.cols)))) }, rd.map);
    // centre each column over the samples: the table shows what changes with the input
    for (let j = 0; j < e.cols; j++) {
      let m = 0;
      for (let i = 0; i < e.rows; i++) m += e.data[i * e.cols + j];
      m /= Math.max(e.rows, 1);
      for (let i = 0; i < e.rows; i++) e.data[i * e.cols + j] -= m;
    }
    return e;
  });
  // Order the rows by the entry (reader, column) whose effect varies most, then spread the picks evenly over it.
  let key: { e: Dense; j: number } | undefined;
  let keyVar = -1;
  for (const e of effects) {
    for (let j = 0; j < e.cols; j++) {
      let v = 0;
      for (let i = 0; i < e.rows; i++) v += e.data[i * e.cols + j] ** 2;
      if (v > keyVar) {
        keyVar = v;
        key = { e, j };
      }
    }
  }
  const strength = picked.map((_, i) => (key ? key.e.data[i * key.e.cols + key.j] : 0));
  const order = [...picked.keys()].sort((a, b) => strength[b] - strength[a]);
  const chosen: number[] = [];
  const want = Math.min(rows, order.length);
  for (let t = 0; t < want; t++) chosen.push(order[Math.floor((t * (order.length - 1)) / Math.max(want - 1, 1))]);
  const inputLabels = stmt.inputs.map((n) => bases.get(n)?.labels ?? []);
  return [...new Set(chosen)].map((i) => {
    const r = picked[i];
    return {
      input: xs.flatMap((x, k) => describeInput(x.data.subarray(r * x.cols, (r + 1) * x.cols), inputLabels[k])),
      effects: readers.map((rd, k) => ({
        reader: rd.name,
        top: topEntries(effects[k].data.subarray(i * effects[k].cols, (i + 1) * effects[k].cols), rd.labels, 3),
      })),
    };
  });
}

/**
 * Runs the MLP stage over every opaque MLP line, in program order (earlier conversions change the inputs later
 * lines see, as in the paper, which skips MLPs whose input passes through an unconverted one).
 */
export async function convertMlps(
  session: Session,
  start: Program,
  opts: MlpStageOptions,
): Promise<{ program: Program; explanations: MlpExplanation[] }> {
  let program = start;
  const explanations: MlpExplanation[] = [];
  const mlpLines = program.statements.filter((s) => s.kind === 'elementwise' && s.fn.name === 'mlp').map((s) => s.name);
  for (const [done, originalName] of mlpLines.entries()) {
    session.report('primitives: MLPs', done / Math.max(mlpLines.length, 1), originalName);
    const stmt = program.statements.find((s) => s.name === originalName);
    if (!stmt || stmt.kind !== 'elementwise' || stmt.fn.name !== 'mlp') continue;
    const mlp = program.mlps.get(stmt.fn.ref) as OpaqueMlp;
    const allBases = inferBases(program);
    const bases = stmt.inputs.map((n) => allBases.get(n) as Basis);
    const xs = collectRows(opts.runner, program, opts.inputs, stmt.inputs, opts.maxRows);
    const run = runOpaqueMlp(mlp, xs);
    const attribution = attributeNeurons(mlp, run, { coverage: opts.neuronCoverage, maxNeurons: opts.maxNeurons });
    const explanation: MlpExplanation = {
      line: originalName,
      originalName,
      ...(stmt.provenance ? { layer: stmt.provenance.layer } : {}),
      candidates: [],
      neurons: attribution.neurons,
      neuronsFvu: attribution.keptFvu,
      neuronDetails: neuronDetails(mlp, attribution.neurons, stmt.inputs, bases.map((b) => b.labels)),
    };
    explanations.push(explanation);
    const withNeurons = (p: Program, name: string): Program => {
      const out = cloneProgram(p);
      out.statements = p.statements.map((s) =>
        s.name === name && s.provenance ? { ...s, provenance: { ...s.provenance, mlp: true, neurons: attribution.neurons } } : s,
      );
      return out;
    };
    const keepOpaque = (reason?: string): void => {
      program = withNeurons(program, originalName);
      explanation.table = effectTable(program, stmt, xs, run.output, allBases, opts.tableRows);
      if (reason) explanation.skipped = reason;
    };
    const bad = bases.find((b) => b.kind === 'residual' || b.kind === 'numeric');
    if (bad) {
      keepOpaque(`its input is in the ${bad.kind} basis (an opaque MLP or a hand-written map upstream)`);
      continue;
    }
    const candidates = mlpCandidates({
      inputs: bases,
      names: stmt.inputs,
      specialIds: specialIdSet(program),
      ...(program.header.special.bos !== undefined ? { bos: program.header.special.bos } : {}),
      viaAttention: stmt.inputs.map((n) => viaAttention(program, n)),
      maxProduct: opts.maxProduct,
    });
    // Candidates with the same features (e.g. harden, forall and sharpen of a one-hot input) are one candidate:
    // the first in the paper's order stands for them.
    const seenFeatures = new Set<string>();
    // Beyond the paper: the FVU is measured on what the readers see (logits, attention scores) when every reader is
    // a linear map of the line, not on the whole d_model output, much of which no reader uses (bce_D2's MLP output
    // varies with the length in directions its projection ignores: count_diff explains its logits, not its residual).
    // Least squares is column-separable, so the readout C fitted on the output is also the best fit of the effect.
    const readers = readerMaps(program, stmt, allBases);
    const effectMap = readers.complete && readers.maps.length > 0 ? hstack(readers.maps.map((r) => r.map)) : undefined;
    const target = effectMap ? matmul(run.output, effectMap) : run.output;
    const outputVariance = varianceSum(target);
    explanation.fvuOn = effectMap ? 'readers' : 'output';
    // Beyond the paper: with readers' maps, each row is weighted by 1 / (its effect's norm + the median norm), so the
    // fit follows relative error. bce_D2's MLP moves the logits by ~470 at BOS and by ~0.7 at lengths 101-150, where
    // that 0.7 decides the prediction: unweighted, the BOS rows own the fit and every readout misses the long bin
    // (no_op 0.889); weighted, no_op (the MLP is linear in the counting aggregate) keeps every prediction.
    let rowWeights: Float64Array | undefined;
    if (effectMap && target.rows > 0) {
      const norms = Float64Array.from({ length: target.rows }, (_, i) => Math.hypot(...target.data.subarray(i * target.cols, (i + 1) * target.cols)));
      const med = Float64Array.from(norms).sort()[norms.length >> 1] + 1e-12;
      rowWeights = norms.map((n) => 1 / (n + med));
    }
    // the weighted output is the same for every candidate
    const fitTarget = rowWeights ? scaleRows(run.output, rowWeights) : run.output;
    const fit = (list: MlpCandidate[]): { cand: MlpCandidate; c: Dense; score: CandidateScore }[] => {
      const all: { cand: MlpCandidate; c: Dense; score: CandidateScore }[] = [];
      for (const cand of list) {
        session.checkCancelled();
        const f = features(cand, xs, bases);
        const key = featureKey(f, cand.kind === 'alias' ? `alias${cand.input}` : '');
        if (seenFeatures.has(key)) continue;
        seenFeatures.add(key);
        const c = leastSquares(rowWeights ? scaleRows(f, rowWeights) : f, fitTarget);
        // f·(C·map), not (f·C)·map: the readers' view is narrower than d_model and C has few rows for most
        // candidates (exists: 2), so this is the small product (count's 770 exists fits: 315M -> 2.5M MACs each).
        const pred = matmul(f, effectMap ? matmul(c, effectMap) : c);
        all.push({ cand, c, score: { label: cand.label, fvu: fvu(pred, target, outputVariance) } });
      }
      // FVUs that differ only numerically (exact fits) are ties: keep the list order among them.
      const tier = (x: number): number => Math.round(x * 1e4);
      // a family (count_diff's scales of one pair) is one candidate: its best fit, the first in list order on ties
      const bestOfFamily = new Map<string, number>();
      for (const x of all) {
        const fam = x.cand.kind === 'fn' ? x.cand.family : undefined;
        if (fam !== undefined) bestOfFamily.set(fam, Math.min(bestOfFamily.get(fam) ?? Infinity, tier(x.score.fvu)));
      }
      const out: { cand: MlpCandidate; c: Dense; score: CandidateScore }[] = [];
      for (const x of all) {
        const fam = x.cand.kind === 'fn' ? x.cand.family : undefined;
        if (fam !== undefined) {
          if (tier(x.score.fvu) !== bestOfFamily.get(fam)) continue;
          bestOfFamily.set(fam, -1); // first of equal bests only
        }
        explanation.candidates.push(x.score);
        if (x.score.fvu < opts.maxFvu) out.push(x);
      }
      // (the paper's order, no_op first, among ties)
      return out.sort((a, b) => tier(a.score.fvu) - tier(b.score.fvu));
    };
    let best: { program: Program; name: string; label: string; match: number; rank: number } | undefined;
    const tryFits = async (fits: { cand: MlpCandidate; c: Dense; score: CandidateScore }[]): Promise<void> => {
      for (const f of fits.slice(0, opts.evaluations)) {
        if (session.outOfTime(`MLPs, ${originalName}`)) break;
        let trial: { program: Program; name: string };
        try {
          trial = replaceMlpLine(program, stmt, f.cand, f.c, bases, attribution.neurons);
        } catch (err) {
          if (err instanceof RebaseError) continue;
          throw err;
        }
        const cleaned = eliminateDeadCode(trial.program);
        // The ranking below compares rejected candidates too (by their early-stop bound, plus the bonus), so they get
        // the bound this stage has always used: checked every 16 sequences.
        const match = await session.evaluate(cleaned, opts.accept, 16);
        f.score.match = match;
        // The paper prefers no_op on near-ties (a +0.01 bonus): an alias is the simplest explanation. `linear` (every
        // input read linearly, no line left) is its unsplit-MLP counterpart and gets the same bonus.
        const rank = match + (f.cand.kind === 'alias' || f.cand.kind === 'linear' ? 0.01 : 0);
        if (!best || rank > best.rank) best = { program: cleaned, name: trial.name, label: f.cand.label, match, rank };
      }
    };
    // Pure primitives first. Additive ones (a primitive plus linear reads of the other inputs) fit almost anything
    // when an input is as wide as the position basis, so they come second, only when no pure one is accepted, and
    // only for the four single-input primitives that fit best on their own (plus `linear`). For a single-input MLP
    // (f(x) + linear x) the additive fits themselves rank: its pure fits are the linear part's competitors.
    const additive = (c: MlpCandidate): boolean => c.kind === 'linear' || (c.kind === 'fn' && c.additive === true);
    const pure = fit(candidates.filter((c) => !additive(c)));
    await tryFits(pure);
    let fitted = pure.length;
    const accepted = (): boolean => best !== undefined && best.match >= opts.accept;
    if (!accepted() && stmt.inputs.length === 1 && candidates.some(additive)) {
      const extra = fit(candidates.filter(additive)).slice(0, 4);
      fitted += extra.length;
      await tryFits(extra);
    } else if (!accepted() && candidates.some(additive)) {
      const ranked = explanation.candidates
        .filter((sc) => candidates.some((c) => c.kind === 'fn' && c.input !== undefined && !c.additive && c.label === sc.label))
        .sort((a, b) => a.fvu - b.fvu)
        .slice(0, 4)
        .map((sc) => `${sc.label} + linear rest`);
      const extra = fit(candidates.filter((c) => c.kind === 'linear' || (additive(c) && ranked.includes(c.label))));
      fitted += extra.length;
      await tryFits(extra);
    }
    if (best && best.match >= opts.accept) {
      program = best.program;
      explanation.line = best.name;
      explanation.primitive = best.label;
      explanation.match = best.match;
      session.steps.push({ stage: 'mlp', line: originalName, choice: best.label, match: best.match });
    } else {
      if (best) explanation.match = best.match;
      keepOpaque(fitted === 0 ? `no primitive fits with FVU < ${opts.maxFvu}` : undefined);
    }
  }
  session.report('primitives: MLPs', 1);
  return { program, explanations };
}

