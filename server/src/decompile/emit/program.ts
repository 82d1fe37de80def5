// Emission (d-rasp.md 2.1, 5.4): the pruned re-parameterized model as a D-RASP Program. Every variable carries an
// embedding E (basis x d_model) with activation(i) = x(i) E; every select/project carries its op matrix
//   pair select  A = (E_q s_q Wq~)(E_k s_k Wk~)^T        key-only  a = beta (E_k s_k Wk~)^T
//   project      B = E s_f Wu~                            bias      b = s_f (b_lm + ablated) Wu~ + beta_f Wu
// with Wq~ = C diag(gamma) W_Q (centring and gamma folded), s_c the learned 1/sqrt(var_c + eps) and beta the
// stage-3 query bias (by default the exact query constant: the stage-2 network). Terms that
// depend only on the query cancel in the softmax and are dropped. Opaque MLP lines carry the exact weights.
// The op matrices are exactly what the masked network computes, so the interpreter reproduces it.
import type { Matrix, OpaqueMlp, Program, Provenance, Statement } from '../../program/types';
import type { PathGraph } from '../reparameterize/graph';
import { vecMat, type FoldedModel } from '../reparameterize/lln';
import type { MaskedState } from '../prune/masked';
import { configEdges, initialBeta, selectorUnits, type SelectorUnits } from '../prune/selectors';

export interface EmitInput {
  graph: PathGraph;
  folded: FoldedModel;
  state: MaskedState;
  /** Final edge mask (1 = kept), after dangling pruning. */
  mask: Float32Array;
  /**
   * Stage-3 selectors (prune/selectors.ts): one select per kept product, one key-only select per kept key term with
   * its learned beta. Without it every kept (q, k) pair is a select and the key-only ones use the exact query
   * constant (the stage-2 network; the same thing with every unit on).
   */
  selectors?: SelectorUnits & { beta: Float32Array; keep: Float32Array };
  vocab: string[];
  objective: 'ce' | 'bce';
  task: string;
  model?: { path: string; sha256: string };
  name?: string;
  /** Prefix for matrix and MLP refs (keeps the names of two programs in one sidecar apart). */
  example?: string;
}

/** A variable of the emitted program: its name, basis size and embedding (rows x d). */
interface Var {
  name: string;
  rows: number;
  /** rows x d, or null for the residual basis (identity embedding). */
  E: Float64Array | null;
}

/** M (rows x d) times W (d x n). M = null means the identity. */
function embedTimes(E: Float64Array | null, rows: number, W: ArrayLike<number>, d: number, n: number, scale = 1): Float64Array {
  const out = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < d; i++) {
      const e = E ? E[r * d + i] : r === i ? 1 : 0;
      if (e === 0) continue;
      const s = e * scale;
      for (let c = 0; c < n; c++) out[r * n + c] += s * W[i * n + c];
    }
  }
  return out;
}

/** A (ra x k) times B (rb x k)^T. */
function timesT(A: Float64Array, ra: number, B: Float64Array, rb: number, k: number): Float64Array {
  const out = new Float64Array(ra * rb);
  for (let i = 0; i < ra; i++) {
    for (let j = 0; j < rb; j++) {
      let s = 0;
      for (let c = 0; c < k; c++) s += A[i * k + c] * B[j * k + c];
      out[i * rb + j] = s;
    }
  }
  return out;
}

export function scaleOf(state: MaskedState, consumer: number, eps: number): number {
  return 1 / Math.sqrt(Math.exp(state.logVar[consumer]) + eps);
}

/** b_c plus the ablation constants of the consumer's pruned edges: everything constant in its input. */
export function consumerConstant(input: Pick<EmitInput, 'graph' | 'folded' | 'state' | 'mask'>, consumer: number): Float64Array {
  const { graph, folded, state, mask } = input;
  const d = folded.d;
  const out = Float64Array.from(state.bc.subarray(consumer * d, (consumer + 1) * d));
  for (const e of graph.consumers[consumer].edges) {
    if (mask[e] > 0) continue;
    const src = graph.edges[e].source;
    for (let i = 0; i < d; i++) out[i] += state.oa[src * d + i];
  }
  return out;
}

export interface EmitResult {
  program: Program;
  /** Statement index -> the matrix it carries, for tests and reports. */
  edges: number;
}

export function emitProgram(input: EmitInput): EmitResult {
  const { graph, folded, state, mask } = input;
  const { d, dh, V, P, eps } = folded;
  const statements: Statement[] = [];
  const matrices = new Map<string, Matrix>();
  const mlps = new Map<string, OpaqueMlp>();
  const vars = new Map<number, Var>();
  vars.set(graph.pathIndex.get('wte')!, { name: 'token', rows: V, E: Float64Array.from(folded.wte) });
  vars.set(graph.pathIndex.get('wpe')!, { name: 'pos', rows: P, E: Float64Array.from(folded.wpe) });
  let nSel = 0;
  let nAgg = 0;
  let nMlp = 0;
  let nMat = 0;
  const addMatrix = (rows: number, cols: number, data: Float64Array): string => {
    const ref = `M${++nMat}`;
    matrices.set(ref, { rows, cols, data: Float32Array.from(data) });
    return ref;
  };
  const kept = (ci: number): number[] => graph.consumers[ci].edges.filter((e) => mask[e] > 0);
  const varOf = (e: number): Var => {
    const v = vars.get(graph.edges[e].source);
    if (!v) throw new Error(`internal: path ${graph.paths[graph.edges[e].source].id} is used but was not emitted`);
    return v;
  };
  const pathId = (e: number): string => graph.paths[graph.edges[e].source].id;
  const prov = (layer: number, head: number | null, mlp: boolean, paths: Provenance['paths']): Provenance => ({ layer, head, mlp, paths });
  const sel = input.selectors ?? defaultSelectors(input);
  /** Kept units per head, in unit order (products q-major, then key-only terms). */
  const unitsOf = new Map<string, number[]>();
  sel.keep.forEach((k, u) => {
    if (k <= 0) return;
    const c = graph.consumers[graph.edges[sel.kEdge[u]].consumer];
    const key = `${c.layer}-${c.head}`;
    unitsOf.set(key, [...(unitsOf.get(key) ?? []), u]);
  });

  for (let l = 0; l < folded.nLayer; l++) {
    const L = folded.layers[l];
    for (let h = 0; h < folded.nHead; h++) {
      const qi = graph.consumerIndex.get(`q-${l}-${h}`)!;
      const ki = graph.consumerIndex.get(`k-${l}-${h}`)!;
      const vi = graph.consumerIndex.get(`v-${l}-${h}`)!;
      const vEdges = kept(vi);
      if (vEdges.length === 0) continue;
      const H = L.heads[h];
      const sq = scaleOf(state, qi, eps);
      const sk = scaleOf(state, ki, eps);
      // each side's LN'd projection of its variable's basis, computed once per edge
      const sides = new Map<number, Float64Array>();
      const side = (e: number, W: Float32Array, s: number): Float64Array => {
        let M = sides.get(e);
        if (!M) {
          M = embedTimes(varOf(e).E, varOf(e).rows, W, d, dh, s);
          sides.set(e, M);
        }
        return M;
      };
      const selectors: string[] = [];
      for (const u of unitsOf.get(`${l}-${h}`) ?? []) {
        const ke = sel.kEdge[u];
        const qe = sel.qEdge[u];
        const kv = varOf(ke);
        const K = side(ke, H.k, sk);
        const name = `s${++nSel}`;
        if (qe >= 0) {
          const qv = varOf(qe);
          const ref = addMatrix(qv.rows, kv.rows, timesT(side(qe, H.q, sq), qv.rows, K, kv.rows, dh));
          statements.push({ kind: 'select', name, line: 0, q: qv.name, k: kv.name, op: { kind: 'matrix', ref }, provenance: prov(l, h, false, { q: pathId(qe), k: pathId(ke) }) });
        } else {
          // beta (everything constant on the query side) dotted with the key
          const beta = Float64Array.from(sel.beta.subarray(u * dh, (u + 1) * dh));
          const ref = addMatrix(1, kv.rows, timesT(beta, 1, K, kv.rows, dh));
          statements.push({ kind: 'select', name, line: 0, k: kv.name, op: { kind: 'matrix', ref }, provenance: prov(l, h, false, { k: pathId(ke) }) });
        }
        selectors.push(name);
      }
      const sv = scaleOf(state, vi, eps);
      for (const e of vEdges) {
        const inner = varOf(e);
        const name = `a${++nAgg}`;
        const ov = embedTimes(inner.E, inner.rows, H.v, d, dh, sv);
        const E = embedTimes(ov, inner.rows, H.o, dh, d);
        vars.set(graph.edges[e].creates!, { name, rows: inner.rows, E });
        statements.push({ kind: 'aggregate', name, line: 0, selectors: [...selectors], v: inner.name, provenance: prov(l, h, false, { v: pathId(e) }) });
      }
    }
    // one opaque line per live MLP unit: the unsplit MLP (its kept inputs and constant) or a split copy (its one
    // input path, no constant), with the unit's own weights (the original ones, or fine-tuned)
    graph.mlps.forEach((u, ui) => {
      if (u.layer !== l) return;
      const mi = u.consumer;
      const mEdges = kept(mi);
      if (mEdges.length === 0) return;
      const ref = graph.splitMlps ? `mlp${l}_${ui}` : `mlp${l}`;
      const { lnGamma, fcW } = opaqueFc(folded, l, state.mlps[ui].fc);
      const w = state.mlps[ui];
      mlps.set(ref, {
        inputEmbeddings: mEdges.map((e) => {
          const v = varOf(e);
          return { rows: v.rows, cols: d, data: Float32Array.from(v.E ?? identity(d)) };
        }),
        ...(u.edge === null ? { constant: Float32Array.from(consumerConstant(input, mi)) } : {}),
        lnGamma,
        lnVariance: Math.exp(state.logVar[mi]),
        lnEps: eps,
        fcW: { rows: d, cols: 4 * d, data: fcW },
        // the folded bias already holds beta2 W_fc + b_fc
        fcB: Float32Array.from(w.fcB),
        projW: { rows: 4 * d, cols: d, data: Float32Array.from(w.proj) },
        projB: Float32Array.from(w.projB),
      });
      const name = `m${++nMlp}`;
      vars.set(u.path, { name, rows: d, E: null });
      statements.push({
        kind: 'elementwise',
        name,
        line: 0,
        fn: { name: 'mlp', ref },
        inputs: mEdges.map((e) => varOf(e).name),
        provenance: prov(l, null, true, { input: mEdges.map(pathId).join('+') }),
      });
    });
  }
  const li = graph.consumerIndex.get('lm_head')!;
  const sf = scaleOf(state, li, eps);
  const terms: string[] = [];
  const lastLayer = Math.max(0, folded.nLayer - 1);
  for (const e of kept(li)) {
    const v = varOf(e);
    const name = `logits${terms.length + 1}`;
    const ref = addMatrix(v.rows, V, embedTimes(v.E, v.rows, folded.unembed, d, V, sf));
    statements.push({ kind: 'project', name, line: 0, inp: v.name, op: { kind: 'matrix', ref }, provenance: prov(lastLayer, null, false, { input: pathId(e) }) });
    terms.push(name);
  }
  const bias = vecMat(consumerConstant(input, li), folded.unembed, d, V);
  const b = new Float64Array(V);
  for (let i = 0; i < V; i++) b[i] = bias[i] * sf + folded.unembedB[i];
  const biasName = `logits${terms.length + 1}`;
  statements.push({ kind: 'project', name: biasName, line: 0, op: { kind: 'matrix', ref: addMatrix(1, V, b) }, provenance: prov(lastLayer, null, false, {}) });
  terms.push(biasName);
  statements.push({ kind: 'prediction', name: 'prediction', line: 0, fn: input.objective === 'bce' ? 'sigmoid' : 'softmax', terms, provenance: prov(lastLayer, null, false, {}) });

  const special = specialIdsOf(input.vocab);
  const program: Program = {
    header: {
      ...(input.name ? { name: input.name } : {}),
      vocab: input.vocab,
      special,
      positions: P,
      output: input.objective === 'bce' ? 'sigmoid' : 'softmax',
      dHead: dh,
      task: input.task,
      ...(input.model ? { model: input.model } : {}),
      ...(input.example ? { example: input.example } : {}),
    },
    statements,
    matrices,
    mlps,
  };
  return { program, edges: configEdges(graph, mask, input.selectors ? input.selectors.keep : null) };
}

/** Every pair of kept q and k edges, and key-only terms with the exact query constant: the stage-2 network. */
function defaultSelectors(input: EmitInput): SelectorUnits & { beta: Float32Array; keep: Float32Array } {
  const units = selectorUnits(input.graph, input.mask);
  return { ...units, beta: initialBeta(input.graph, input.folded, input.state, input.mask, units), keep: new Float32Array(units.kEdge.length).fill(1) };
}

function identity(d: number): Float64Array {
  const I = new Float64Array(d * d);
  for (let i = 0; i < d; i++) I[i * d + i] = 1;
  return I;
}

/**
 * The OpaqueMlp contract applies (x - mean) * gamma / sqrt(var + eps) and then c_fc, i.e. x C diag(gamma) c_fc / s.
 * The unit's weights hold F = C diag(gamma) W (centred). Unchanged weights are emitted as the raw ln_2 gamma and
 * c_fc (FoldedModel keeps them); fine-tuned ones as gamma and diag(1/gamma) F, which gives C diag(gamma)
 * diag(1/gamma) F = C F = F; with a (near-)zero gamma entry, as gamma = 1 and F itself.
 */
function opaqueFc(f: FoldedModel, l: number, F: Float32Array): { lnGamma: Float32Array; fcW: Float32Array } {
  const L = f.layers[l];
  const d = f.d;
  const n = 4 * d;
  if (F.length === L.fc.length && F.every((x, i) => x === L.fc[i])) return { lnGamma: Float32Array.from(L.ln2Gamma), fcW: Float32Array.from(L.fcRaw) };
  const g = L.ln2Gamma;
  const gMax = g.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
  if (gMax > 0 && g.every((x) => Math.abs(x) > 1e-3 * gMax)) {
    const fcW = new Float32Array(d * n);
    for (let r = 0; r < d; r++) for (let c = 0; c < n; c++) fcW[r * n + c] = F[r * n + c] / g[r];
    return { lnGamma: Float32Array.from(g), fcW };
  }
  return { lnGamma: new Float32Array(d).fill(1), fcW: Float32Array.from(F) };
}

export function specialIdsOf(vocab: readonly string[]): Program['header']['special'] {
  const out: Program['header']['special'] = {};
  const find = (s: string): number | undefined => {
    const i = vocab.indexOf(s);
    return i >= 0 ? i : undefined;
  };
  const bos = find('<bos>');
  const sep = find('<sep>');
  const eos = find('<eos>');
  const pad = find('<pad>');
  if (bos !== undefined) out.bos = bos;
  if (sep !== undefined) out.sep = sep;
  if (eos !== undefined) out.eos = eos;
  if (pad !== undefined) out.pad = pad;
  return out;
}
