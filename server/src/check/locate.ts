// Where a program first departs from its model on a disagreeing input (issue 6): the program's decision and the
// model's differ at position i; which statement is at fault?
//
// Definition ("first disagreeing statement"). Statements are judged by what replacing them with the model's own
// counterpart does at i, not by a tolerance alone: a small difference can flip a decision downstream while a large
// one elsewhere may not matter. Counterparts exist for select lines citing `layer L head H q=P k=Q` (the model's score
// term for those paths, paths.ts), for the attention of aggregates citing a head, and for opaque MLP lines.
//   1. Selects, in program order: the first whose scores are further from the model's term than no select at all
//      (relative error > SELECT_TOLERANCE and > SELECT_MIN_DIFFERENCE nats) and whose replacement by the model's term
//      repairs the decision at i.
//   2. Heads, h1..hK in program order: P_k is the program with the attention of h1..hk replaced by the model's own
//      pattern on this input (a select over pos x pos whose scores are the log attention probabilities, so the
//      interpreter's softmax returns them exactly). The first k for which P_k decides like the model at i marks head
//      hk, and within it the select whose scores the difference follows: what the program's scores lack, log p_model
//      minus its summed select scores (row-centred, weighted by attention, pooled over the input's query rows), is
//      correlated with each select's scores; a flipped, too weak or too strong select leaves a difference that follows
//      it (|correlation| >= SELECT_CORRELATION). The only select of an aggregate is marked outright; otherwise the
//      aggregate (paths the program lacks, or an error spread over several selects).
//   3. Otherwise the earliest head whose attention row i is far from the model's (total variation >
//      ATTENTION_TOLERANCE, same attribution); else, with every head given the model's attention, the earliest opaque
//      MLP line whose output at i departs from the model's MLP output (relative error > MLP_TOLERANCE); else the
//      prediction line: the projections' sum, or statements without a counterpart (named primitives, maps).
// Replacing a component with the model's presumes the rest of the program is faithful to the model component by
// component (an extracted faithful program is); a program whose parts were refit to each other (rounded, learned
// query constants) may only show its fault at the prediction line.
import * as tf from '@tensorflow/tfjs';
import { Execution } from '../interpreter';
import { MAX_OP_ENTRIES } from '../interpreter/ops';
import { contributionNames, forward, makeBatch, tfModelOf } from '../model/forward';
import type { LoadedModel } from '../model/types';
import { describePath } from '../program/provenance';
import type { AggregateStatement, Matrix, Program, SelectStatement, Statement } from '../program/types';
import { argmaxRow, type Task } from '../tasks';
import { namedQueryPaths, PathTerms } from './paths';

/** Total variation distance above which an attention row is far from the head's (half the mass moved). */
export const ATTENTION_TOLERANCE = 0.5;
/** Relative L2 error above which an opaque MLP's output departs from the model's MLP output. */
export const MLP_TOLERANCE = 0.5;
/** Relative error (vs the model's own score term) above which a select departs: worse than leaving it out. */
export const SELECT_TOLERANCE = 1;
/** ... and only when the difference is worth this many nats (weighted RMS), so near-zero terms do not count. */
const SELECT_MIN_DIFFERENCE = 0.1;
/** How closely a select's scores must follow what the program's attention scores miss to be marked. */
export const SELECT_CORRELATION = 0.7;
/** Attention probabilities below this are scored as this (log 0 is not a score). */
const MIN_PROB = 1e-30;

export interface LocatedStatement {
  statement: { line: number; name: string };
  reason: string;
}

export interface LocateItem {
  seq: number[];
  /** The first scored position where the decisions differ. */
  position: number;
}

interface ModelTrace {
  logits: Float32Array; // B x T x V
  /** attention[l][h]: B x T x T */
  attention: Float32Array[][];
  /** mlp[l]: B x T x d */
  mlp: Float32Array[];
  /** Every residual contribution by name: B x T x d. */
  contributions: Map<string, Float32Array>;
  T: number;
}

async function traceModel(model: LoadedModel, seqs: number[][]): Promise<ModelTrace> {
  const tm = await tfModelOf(model);
  const batch = makeBatch(model.config, seqs);
  const { nLayer, nHead } = model.config;
  const names = contributionNames(model.config);
  const tensors = tf.tidy(() => {
    const out = forward(tm, batch, { record: { attention: true, contributions: true } });
    return [out.logits, ...out.attention!.flat(), ...names.map((name) => out.contributions!.get(name)!)];
  });
  try {
    const data = await Promise.all(tensors.map(async (t) => (await t.data()) as Float32Array));
    const attention = Array.from({ length: nLayer }, (_, l) => data.slice(1 + l * nHead, 1 + (l + 1) * nHead));
    const contributions = new Map(names.map((name, k) => [name, data[1 + nLayer * nHead + k]]));
    const mlp = Array.from({ length: nLayer }, (_, l) => contributions.get(`mlp-${l}`)!);
    return { logits: data[0], attention, mlp, contributions, T: batch.T };
  } finally {
    for (const t of tensors) t.dispose();
  }
}

/** A model head the program cites, with its aggregates (program order). */
interface HeadGroup {
  layer: number;
  head: number;
  aggregates: AggregateStatement[];
}

function headGroups(program: Program, nLayer: number, nHead: number): HeadGroup[] {
  const groups: HeadGroup[] = [];
  for (const s of program.statements) {
    const p = s.provenance;
    if (s.kind !== 'aggregate' || !p || p.mlp || p.head === null || p.layer >= nLayer || p.head >= nHead) continue;
    const g = groups.find((x) => x.layer === p.layer && x.head === p.head);
    if (g) g.aggregates.push(s);
    else groups.push({ layer: p.layer, head: p.head, aggregates: [s] });
  }
  return groups;
}

function totalVariation(p: ArrayLike<number>, q: ArrayLike<number>, len: number): number {
  let s = 0;
  for (let j = 0; j < len; j++) s += Math.abs(p[j] - q[j]);
  return s / 2;
}

const f2 = (x: number): string => x.toFixed(2);

function stmtRef(s: Statement): { line: number; name: string } {
  return { line: s.line, name: s.name };
}

/** A name no statement of the program uses. */
function freshName(program: Program, base: string): string {
  const used = new Set(program.statements.map((s) => s.name));
  let name = base;
  for (let k = 2; used.has(name) || program.matrices.has(name); k++) name = `${base}_${k}`;
  return name;
}

/**
 * The program with the attention of the given heads replaced by `patterns` (one P x P score matrix per head):
 * a new select over pos x pos feeds every aggregate of the head.
 */
function forceHeads(program: Program, groups: HeadGroup[], patterns: Matrix[]): Program {
  const matrices = new Map(program.matrices);
  const replace = new Map<AggregateStatement, string>();
  const insertBefore = new Map<Statement, SelectStatement>();
  groups.forEach((g, k) => {
    const name = freshName(program, `model_attention_${g.layer}_${g.head}`);
    matrices.set(name, patterns[k]);
    insertBefore.set(g.aggregates[0], { kind: 'select', name, line: 0, q: 'pos', k: 'pos', op: { kind: 'matrix', ref: name } });
    for (const a of g.aggregates) replace.set(a, name);
  });
  const statements: Statement[] = [];
  for (const s of program.statements) {
    const sel = insertBefore.get(s);
    if (sel) statements.push(sel);
    const forced = replace.get(s as AggregateStatement);
    statements.push(forced ? { ...(s as AggregateStatement), selectors: [forced] } : s);
  }
  return { ...program, statements, matrices };
}

/**
 * Locates the first disagreeing statement for each item (see the file header). The model runs once on all items
 * (attention and MLP outputs recorded); the program a few times per item (once per forced prefix of heads).
 */
export async function locateDisagreements(program: Program, model: LoadedModel, task: Task, items: LocateItem[], signal?: AbortSignal): Promise<LocatedStatement[]> {
  if (items.length === 0) return [];
  const trace = await traceModel(model, items.map((it) => it.seq));
  const { nLayer, nHead, nEmbd: d } = model.config;
  const V = task.vocab.length;
  const T = trace.T;
  const P = program.header.positions;
  const groups = headGroups(program, nLayer, nHead);
  const canForce = P * P <= MAX_OP_ENTRIES;
  const prediction = program.statements.find((s) => s.kind === 'prediction') ?? program.statements[program.statements.length - 1];
  const dHead = program.header.dHead;
  const scale = dHead !== undefined ? 1 / Math.sqrt(dHead) : 1;
  const opts = signal ? { signal } : {};
  const queryPaths = namedQueryPaths(program);
  const selects = program.statements.filter((s): s is SelectStatement => s.kind === 'select' && !!s.provenance);

  return items.map((item, b) => {
    const i = item.position;
    const tok = (j: number) => task.vocab[item.seq[j]];
    const modelAt = (c: number) => trace.logits[(b * T + i) * V + c];
    const agrees = (logits: Float64Array): boolean => {
      if (task.objective === 'ce') return argmaxRow(logits, i, V) === argmaxRow(Float64Array.from({ length: V }, (_, c) => modelAt(c)), 0, V);
      for (let c = 0; c < V; c++) if (logits[i * V + c] > 0 !== modelAt(c) > 0) return false;
      return true;
    };
    const exec = new Execution(program, item.seq, opts);
    const result = exec.runToEnd();
    const n = exec.n;
    // (float32 model logits from another batch may put a tie the other way: then nothing can repair anything)
    const differs = !agrees(result.logits);

    // Each head's attention row i, program vs model (the aggregate of the head that is furthest from it).
    const rows = groups.map((g) => {
      const base = (b * T + i) * T;
      const theirs = trace.attention[g.layer][g.head].subarray(base, base + i + 1);
      let worst: { agg: AggregateStatement; mine: Float64Array; tv: number } | undefined;
      for (const agg of g.aggregates) {
        const W = exec.attention(agg.name);
        if (!W) continue;
        const mine = W.subarray(i * n, i * n + i + 1);
        const tv = totalVariation(mine, theirs, i + 1);
        if (!worst || tv > worst.tv) worst = { agg, mine, tv };
      }
      return { group: g, theirs, ...worst! };
    });
    const describe = (r: (typeof rows)[number]): string => {
      let j = 0;
      for (let k = 1; k <= i; k++) if (Math.abs(r.mine[k] - r.theirs[k]) > Math.abs(r.mine[j] - r.theirs[j])) j = k;
      return `the attention of layer ${r.group.layer} head ${r.group.head} at position ${i} differs from the model's by ${f2(r.tv)} (total variation; most on key ${j} (${tok(j)}): program ${f2(r.mine[j])}, model ${f2(r.theirs[j])})`;
    };

    // 1. a select further from the model's own score term than no select at all, whose replacement by that term
    //    repairs the decision
    const terms = new PathTerms(model, { b, T, n, tokens: item.seq, contributions: trace.contributions, attention: trace.attention });
    for (const sel of canForce && differs ? selects : []) {
      const p = sel.provenance!;
      const term = terms.selectTerm(sel, queryPaths.get(`${p.layer}/${p.head}`) ?? []);
      if (!term) continue;
      const agg = program.statements.find((st): st is AggregateStatement => st.kind === 'aggregate' && st.selectors.includes(sel.name));
      const dep = departure(exec.selector(sel.name)!.scores, scale, term, n, i, agg ? exec.attention(agg.name) : undefined, trace.attention[p.layer][p.head!], b, T);
      if (dep.relative <= SELECT_TOLERANCE || dep.rms <= SELECT_MIN_DIFFERENCE) continue;
      const replaced = new Execution(replaceSelect(program, sel, term, n, P, scale), item.seq, opts).runToEnd();
      if (!agrees(replaced.logits)) continue;
      const paths = `${p.paths.q ? `query ${describePath(p.paths.q)}` : 'the rest of the query'}, key ${describePath(p.paths.k!)}`;
      return {
        statement: stmtRef(sel),
        reason: `the scores of ${sel.name} depart from the model's own score term for layer ${p.layer} head ${p.head} (${paths}) by ${f2(dep.relative)} times the term's size (${f2(dep.rms)} nats) on positions up to ${i}; with the model's term in its place the program decides like the model`,
      };
    }

    // 2. the shortest prefix of heads whose model attention repairs the decision
    let forcedAll: Execution | undefined;
    if (groups.length > 0 && canForce && differs) {
      const patterns = groups.map((g) => modelScores(trace.attention[g.layer][g.head], b, T, item.seq.length, P, dHead));
      for (let k = 1; k <= groups.length; k++) {
        const forced = new Execution(forceHeads(program, groups.slice(0, k), patterns.slice(0, k)), item.seq, opts);
        const r = forced.runToEnd();
        if (k === groups.length) forcedAll = forced;
        if (!agrees(r.logits)) continue;
        const row = rows[k - 1];
        const earlier = k > 1 ? ` and the ${k - 1} head${k > 2 ? 's' : ''} before it` : '';
        const close = row.tv < 0.05 ? ' (a small difference, but the decision there is a close call)' : '';
        const fix = `with the model's own attention for this head${earlier} the program decides like the model${close}`;
        return blame(program, exec, n, scale, row.agg, trace.attention[row.group.layer][row.group.head], b, T, `${describe(row)}; ${fix}`);
      }
    }
    // 3. no forced prefix repairs it: a head far off, else an MLP, else the sum of the projections
    const far = rows.find((r) => r.tv > ATTENTION_TOLERANCE);
    if (far) return blame(program, exec, n, scale, far.agg, trace.attention[far.group.layer][far.group.head], b, T, describe(far));
    const forcedNote = forcedAll ? ", with the model's own attention in every head" : '';
    const run = forcedAll ?? exec;
    let largest: string | undefined;
    let largestValue = -1;
    for (const s of program.statements) {
      const p = s.provenance;
      if (s.kind !== 'elementwise' || s.fn.name !== 'mlp' || !p?.mlp || p.layer >= nLayer) continue;
      const v = run.value(s.name);
      if (!v || v.basis.size !== d) continue;
      const off = (b * T + i) * d;
      let err = 0;
      let norm = 0;
      for (let c = 0; c < d; c++) {
        err += (v.data[i * d + c] - trace.mlp[p.layer][off + c]) ** 2;
        norm += trace.mlp[p.layer][off + c] ** 2;
      }
      const rel = Math.sqrt(err) / Math.max(Math.sqrt(norm), 1e-12);
      if (rel > MLP_TOLERANCE) {
        return { statement: stmtRef(s), reason: `the output of the layer ${p.layer} MLP at position ${i} departs from the model's (relative error ${f2(rel)})${forcedNote}` };
      }
      if (rel > largestValue) {
        largestValue = rel;
        largest = `layer ${p.layer} MLP output, relative error ${f2(rel)}`;
      }
    }
    const worstHead = rows.reduce<(typeof rows)[number] | undefined>((w, r) => (!w || r.tv > w.tv ? r : w), undefined);
    const checked = [
      ...(worstHead ? [`attention of layer ${worstHead.group.layer} head ${worstHead.group.head}, total variation ${f2(worstHead.tv)}`] : []),
      ...(largest ? [largest] : []),
    ];
    const within = checked.length
      ? `; no statement with a counterpart in the model accounts for it (largest differences: ${checked.join('; ')}), so it comes from what the projections add up to or from statements without a counterpart (primitives, maps, parts refit to each other)`
      : '; no statement cites a model component to compare with (annotate aggregates with `# layer L head H`)';
    const decided = !differs
      ? `the decisions at position ${i} (${tok(i)}) differ only by a rounding-level margin`
      : `the decisions differ at position ${i} (${tok(i)}): ${decisionDiff(task, result.logits, i, modelAt)}`;
    const still = forcedAll ? "; they still differ with the model's own attention in every head" : '';
    return { statement: stmtRef(prediction), reason: `${decided}${still}${within}` };
  });
}

/** How the program's and the model's decisions at i differ, with the logits that decide. */
function decisionDiff(task: Task, logits: Float64Array, i: number, modelAt: (c: number) => number): string {
  const V = task.vocab.length;
  if (task.objective === 'ce') {
    const a = argmaxRow(logits, i, V);
    const m = argmaxRow(Float64Array.from({ length: V }, (_, c) => modelAt(c)), 0, V);
    return `the program predicts ${task.vocab[a]}, the model ${task.vocab[m]} (program logits ${f2(logits[i * V + a])} vs ${f2(logits[i * V + m])}; model ${f2(modelAt(a))} vs ${f2(modelAt(m))})`;
  }
  const diff: string[] = [];
  for (let c = 0; c < V; c++) {
    const mine = logits[i * V + c];
    if (mine > 0 !== modelAt(c) > 0) diff.push(`${task.vocab[c]}: program ${f2(mine)}, model ${f2(modelAt(c))}`);
  }
  return `the logits change sign for ${diff.join('; ')}`;
}

/** The program with one select's scores replaced by the model's term on this input (a pos x pos select, same name). */
function replaceSelect(program: Program, sel: SelectStatement, term: Float64Array, n: number, P: number, scale: number): Program {
  const ref = freshName(program, `model_term_${sel.name}`);
  const data = new Float32Array(P * P);
  for (let q = 0; q < n; q++) for (let k = 0; k <= q; k++) data[q * P + k] = term[q * n + k] / scale;
  const matrices = new Map(program.matrices).set(ref, { rows: P, cols: P, data });
  const statements = program.statements.map((st): Statement => (st === sel ? { kind: 'select', name: sel.name, line: sel.line, q: 'pos', k: 'pos', op: { kind: 'matrix', ref } } : st));
  return { ...program, statements, matrices };
}

/** The model's attention of one head on one input as pos x pos select scores (log probabilities, pre-scaled). */
function modelScores(pattern: Float32Array, b: number, T: number, n: number, P: number, dHead: number | undefined): Matrix {
  const data = new Float32Array(P * P);
  const unscale = dHead !== undefined ? Math.sqrt(dHead) : 1;
  for (let q = 0; q < n; q++) {
    const base = (b * T + q) * T;
    for (let k = 0; k <= q; k++) data[q * P + k] = Math.log(Math.max(pattern[base + k], MIN_PROB)) * unscale;
  }
  return { rows: P, cols: P, data };
}

/**
 * Puts an attention difference on the select that accounts for it, else on the aggregate. What the program's scores
 * lack is r = log p_model - scale * (sum of its selects' scores), per query row up to a constant (the softmax ignores
 * one). A select whose scores are wrong by a factor (flipped, too weak, too strong) leaves an r that follows its own
 * scores, so each select is scored by the weighted correlation of its row-centred scores with r, pooled over every
 * query row of the input (one row has too few keys to tell selects apart) and weighted by the attention either side
 * puts on a key (keys neither attends to do not matter).
 */
function blame(program: Program, exec: Execution, n: number, scale: number, agg: AggregateStatement, modelPattern: Float32Array, b: number, T: number, why: string): LocatedStatement {
  const selects = agg.selectors.map((name) => program.statements.find((st): st is SelectStatement => st.name === name && st.kind === 'select'));
  if (agg.selectors.length === 0) return { statement: stmtRef(agg), reason: `${why} (${agg.name} attends uniformly)` };
  if (selects.some((st) => !st)) return { statement: stmtRef(agg), reason: why };
  if (selects.length === 1) return { statement: stmtRef(selects[0]!), reason: `${why}; ${selects[0]!.name} is the only select of ${agg.name}` };
  const W = exec.attention(agg.name)!;
  const scores = agg.selectors.map((name) => exec.selector(name)!.scores);
  const k = scores.length;
  // weighted sums for the correlation of r with each select's scores, after centring every query row
  const srr = { v: 0 };
  const sxx = new Float64Array(k);
  const sxr = new Float64Array(k);
  const r = new Float64Array(n);
  const x = scores.map(() => new Float64Array(n));
  const w = new Float64Array(n);
  for (let q = 1; q < n; q++) {
    let wsum = 0;
    for (let j = 0; j <= q; j++) {
      const pm = modelPattern[(b * T + q) * T + j];
      w[j] = (pm + W[q * n + j]) / 2;
      wsum += w[j];
      let total = 0;
      for (let t = 0; t < k; t++) {
        x[t][j] = scale * scores[t][q * n + j];
        total += x[t][j];
      }
      r[j] = Math.log(Math.max(pm, MIN_PROB)) - total;
    }
    const centre = (v: Float64Array) => {
      let m = 0;
      for (let j = 0; j <= q; j++) m += w[j] * v[j];
      m /= wsum;
      for (let j = 0; j <= q; j++) v[j] -= m;
    };
    centre(r);
    for (const v of x) centre(v);
    for (let j = 0; j <= q; j++) {
      srr.v += w[j] * r[j] * r[j];
      for (let t = 0; t < k; t++) {
        sxx[t] += w[j] * x[t][j] * x[t][j];
        sxr[t] += w[j] * x[t][j] * r[j];
      }
    }
  }
  let best = -1;
  let bestCorr = 0;
  for (let t = 0; t < k; t++) {
    const c = sxx[t] > 0 && srr.v > 0 ? sxr[t] / Math.sqrt(sxx[t] * srr.v) : 0;
    if (Math.abs(c) > Math.abs(bestCorr)) {
      bestCorr = c;
      best = t;
    }
  }
  if (best < 0 || Math.abs(bestCorr) < SELECT_CORRELATION) return { statement: stmtRef(agg), reason: `${why}; no single select of ${agg.name} accounts for it` };
  const name = selects[best]!.name;
  return {
    statement: stmtRef(selects[best]!),
    reason: `${why}; what the program's scores miss follows ${name}'s scores (correlation ${f2(bestCorr)} over this input's attention rows: ${name} is ${bestCorr < 0 ? 'too strong or of the wrong sign' : 'too weak'})`,
  };
}

/**
 * How far a select's scores (times `scale`) are from the model's term over query rows 1..i: both are centred per row
 * (the softmax ignores a row's constant) and weighted by the attention either side puts on a key. `relative` is the
 * difference's size over the term's; `rms` the difference in nats.
 */
function departure(scores: Float64Array, scale: number, term: Float64Array, n: number, i: number, mine: Float64Array | undefined, modelPattern: Float32Array, b: number, T: number): { relative: number; rms: number } {
  let diff2 = 0;
  let term2 = 0;
  let wall = 0;
  const w = new Float64Array(n);
  const dv = new Float64Array(n);
  const tv = new Float64Array(n);
  for (let q = 1; q <= i; q++) {
    let ws = 0;
    let dm = 0;
    let tm = 0;
    for (let j = 0; j <= q; j++) {
      w[j] = ((mine ? mine[q * n + j] : 1 / (q + 1)) + modelPattern[(b * T + q) * T + j]) / 2;
      tv[j] = term[q * n + j];
      dv[j] = scale * scores[q * n + j] - tv[j];
      ws += w[j];
      dm += w[j] * dv[j];
      tm += w[j] * tv[j];
    }
    dm /= ws;
    tm /= ws;
    for (let j = 0; j <= q; j++) {
      diff2 += w[j] * (dv[j] - dm) ** 2;
      term2 += w[j] * (tv[j] - tm) ** 2;
    }
    wall += ws;
  }
  if (wall === 0) return { relative: 0, rms: 0 };
  return { relative: Math.sqrt(diff2 / Math.max(term2, 1e-24)), rms: Math.sqrt(diff2 / wall) };
}
