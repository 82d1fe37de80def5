// The masked, re-parameterized model in tfjs: every consumer rebuilds its input from stored path activations
// (method-pruning.md 2.1-2.2), u_c = sum_e [m_e act_src + (1 - m_e) a_src] + b_c, then applies its linear layer
// norm and its frozen weights. One mask row per batch row.
//
// Speed (tfjs-wasm-performance.md): frozen maps use a custom gradient with a pre-transposed weight copy so both
// directions stay on the non-transposed matmul fast path; token and position activations are computed in plain
// JS once per cached batch (no gather, whose gradient wasm lacks); mask columns are picked with small one-hot
// products instead of gathers; attention's batched products run as depthwise convolutions (model/forward.ts bmm),
// 4-6x faster than batched matMul on wasm.
import * as tf from '@tensorflow/tfjs';
import type { PathGraph } from '../reparameterize/graph';
import type { FoldedModel } from '../reparameterize/lln';
import { bmm, bmmNT } from '../../model/forward';
import { frozenLinear, type Linear } from './linear';
import { MlpBank, type MlpWeights } from './mlps';

export type Objective = 'ce' | 'bce';

export interface Batch {
  B: number;
  T: number;
  seqs: number[][];
  tok: tf.Tensor3D;
  pos: tf.Tensor3D;
  causal: tf.Tensor2D;
  /** B x T: 1 at scored positions. */
  weight: tf.Tensor2D;
  nScored: number;
  /** CE: the original model's log-probabilities; BCE: its sigmoid outputs. B x T x V. */
  target: tf.Tensor3D;
}


/** Identity whose gradient is zero (tfjs has no stop_gradient). */
export const stopGrad = tf.customGrad((...args: unknown[]) => ({
  value: tf.clone(args[0] as tf.Tensor),
  gradFunc: (dy: tf.Tensor | tf.Tensor[]) => tf.zerosLike(dy as tf.Tensor),
})) as (x: tf.Tensor) => tf.Tensor;

interface HeadT {
  q: Linear;
  k: Linear;
  v: Linear;
  o: Linear;
  cQ: tf.Tensor1D;
  cK: tf.Tensor1D;
}

/**
 * Stage-3 hook (prune/selectors.ts): the attention logits of head (layer, head) before the 1/sqrt(d_head) scale
 * and the causal mask, B x T x T, replacing q k^T. `proj.q(path)` / `proj.k(path)` give one path's linear-LN'd
 * query / key projection (B x T x d_head, no constants). Returning null keeps the usual q k^T.
 */
export type HeadScores = (
  layer: number,
  head: number,
  proj: { B: number; T: number; q: (path: number) => tf.Tensor3D; k: (path: number) => tf.Tensor3D },
) => tf.Tensor3D | null;

export interface MaskedState {
  logVar: Float32Array;
  oa: Float32Array;
  bc: Float32Array;
  /** One weight set per MLP unit (graph.mlps order): learnable, frozen while pruning (prune/mlps.ts). */
  mlps: MlpWeights[];
}

export type { MlpWeights };

export class MaskedModel {
  readonly logVar: tf.Variable;
  readonly oa: tf.Variable;
  readonly bc: tf.Variable;
  private readonly heads: HeadT[][] = [];
  /** MLP weights (one set per graph.mlps unit): frozen fast path unless `mlps.setTraining(true)`. */
  readonly mlps: MlpBank;
  private readonly unembed: Linear;
  private readonly unembedB: tf.Tensor1D;
  /** Per consumer: E x k one-hot picking its edges' mask columns, and k x nPaths picking the sources. */
  private readonly pickEdges: tf.Tensor2D[] = [];
  private readonly pickSources: tf.Tensor2D[] = [];
  private readonly owned: tf.Tensor[] = [];

  constructor(
    readonly graph: PathGraph,
    readonly folded: FoldedModel,
    init: MaskedState,
  ) {
    const { d, dh } = folded;
    const lin = (data: Float32Array, rows: number, cols: number): Linear => {
      const r = frozenLinear(data, rows, cols);
      this.owned.push(...r.tensors);
      return r.fn;
    };
    const vec = (data: Float32Array): tf.Tensor1D => {
      const t = tf.tensor1d(data);
      this.owned.push(t);
      return t;
    };
    for (const layer of folded.layers) {
      this.heads.push(
        layer.heads.map((h) => ({
          q: lin(h.q, d, dh),
          k: lin(h.k, d, dh),
          v: lin(h.v, d, dh),
          o: lin(h.o, dh, d),
          cQ: vec(h.cQ),
          cK: vec(h.cK),
        })),
      );
    }
    this.unembed = lin(folded.unembed, d, folded.V);
    this.unembedB = vec(folded.unembedB);
    const E = graph.edges.length;
    for (const c of graph.consumers) {
      const pe = new Float32Array(E * c.edges.length);
      const ps = new Float32Array(c.edges.length * graph.paths.length);
      c.edges.forEach((e, i) => {
        pe[e * c.edges.length + i] = 1;
        ps[i * graph.paths.length + graph.edges[e].source] = 1;
      });
      const a = tf.tensor2d(pe, [E, c.edges.length]);
      const b = tf.tensor2d(ps, [c.edges.length, graph.paths.length]);
      this.pickEdges.push(a);
      this.pickSources.push(b);
      this.owned.push(a, b);
    }
    this.logVar = tf.variable(tf.tensor1d(init.logVar), true, undefined);
    this.oa = tf.variable(tf.tensor2d(init.oa, [graph.paths.length, d]), true);
    this.bc = tf.variable(tf.tensor2d(init.bc, [graph.consumers.length, d]), true);
    this.mlps = new MlpBank(d, init.mlps);
  }

  state(): MaskedState {
    return {
      logVar: this.logVar.dataSync() as Float32Array,
      oa: this.oa.dataSync() as Float32Array,
      bc: this.bc.dataSync() as Float32Array,
      mlps: this.mlps.weights(),
    };
  }

  setState(s: MaskedState): void {
    this.logVar.assign(tf.tensor1d(s.logVar));
    this.oa.assign(tf.tensor2d(s.oa, [this.graph.paths.length, this.folded.d]));
    this.bc.assign(tf.tensor2d(s.bc, [this.graph.consumers.length, this.folded.d]));
    this.mlps.set(s.mlps);
  }

  dispose(): void {
    for (const t of this.owned) t.dispose();
    this.logVar.dispose();
    this.oa.dispose();
    this.bc.dispose();
    this.mlps.dispose();
  }

  private scale(c: number): tf.Tensor {
    return tf.rsqrt(tf.add(tf.exp(tf.slice(this.logVar, [c], [1])), this.folded.eps));
  }

  /**
   * Logits (B x T x V) for one batch under mask rows M (B x E, differentiable). `gate` (B x E, constant) is 1
   * where an edge is fully ablated: only there does the ablation constant learn (method-pruning.md 3.3).
   * `absent[e]` = 1 marks edges that are off in every row (pruned by an earlier stage): their activations are
   * never computed, and heads or MLPs with no present value/input edge are skipped entirely.
   */
  forward(batch: Batch, M: tf.Tensor2D, gate: tf.Tensor2D | null, absent?: Uint8Array, headScores?: HeadScores): tf.Tensor3D {
    const { graph, folded } = this;
    const { B, T } = batch;
    const d = folded.d;
    const acts: (tf.Tensor3D | undefined)[] = new Array(graph.paths.length);
    acts[0] = batch.tok;
    acts[1] = batch.pos;
    const oaConst = stopGrad(this.oa) as tf.Tensor2D;

    interface Prep {
      Mc: tf.Tensor2D; // B x k mask columns of the consumer's edges
      off: tf.Tensor2D; // 1 - Mc
      offG: tf.Tensor2D | null; // (1 - Mc) where the edge is fully ablated: the only rows the constants learn from
      oaRows: tf.Tensor2D; // k x d ablation constants of the edges' sources
      oaRowsConst: tf.Tensor2D;
    }
    const preps = new Map<number, Prep>();
    const prep = (ci: number): Prep => {
      const hit = preps.get(ci);
      if (hit) return hit;
      const Mc = tf.matMul(M, this.pickEdges[ci]) as tf.Tensor2D;
      const off = tf.sub(1, Mc) as tf.Tensor2D;
      const p: Prep = {
        Mc,
        off,
        offG: gate ? (tf.mul(off, tf.matMul(gate, this.pickEdges[ci])) as tf.Tensor2D) : null,
        oaRows: tf.matMul(this.pickSources[ci], this.oa as tf.Tensor2D) as tf.Tensor2D,
        oaRowsConst: tf.matMul(this.pickSources[ci], oaConst),
      };
      preps.set(ci, p);
      return p;
    };
    const col = (x: tf.Tensor2D, i: number): tf.Tensor2D => tf.slice(x, [0, i], [B, 1]);
    const row = (x: tf.Tensor2D, i: number): tf.Tensor2D => tf.slice(x, [i, 0], [1, d]);
    const actTerm = (p: Prep, e: number, i: number): tf.Tensor3D => {
      const a = acts[graph.edges[e].source];
      if (!a) throw new Error(`internal: path ${graph.paths[graph.edges[e].source].id} is read but was not computed`);
      return tf.mul(tf.reshape(col(p.Mc, i), [B, 1, 1]), a) as tf.Tensor3D;
    };
    /** sum_e [m_e act_e + (1 - m_e) a_e] + b_c, B x T x d. Statically absent edges contribute only a_e. */
    const consumerInput = (ci: number): tf.Tensor3D => {
      const c = graph.consumers[ci];
      const p = prep(ci);
      const ablated: tf.Tensor = p.offG
        ? tf.add(tf.matMul(p.offG, p.oaRows), tf.matMul(tf.sub(p.off, p.offG) as tf.Tensor2D, p.oaRowsConst))
        : tf.matMul(p.off, p.oaRowsConst);
      const constant = tf.reshape(tf.add(ablated, row(this.bc as tf.Tensor2D, ci)), [B, 1, d]);
      let u: tf.Tensor3D | undefined;
      c.edges.forEach((e, i) => {
        if (absent?.[e]) return;
        const term = actTerm(p, e, i);
        u = u ? (tf.add(u, term) as tf.Tensor3D) : term;
      });
      return tf.add(u ?? tf.zeros([B, T, d]), constant) as tf.Tensor3D;
    };
    /** One value edge's input m act + (1 - m) a (no b_c: value-side constants live in later consumers' b_c). */
    const valueInput = (ci: number, e: number): tf.Tensor3D => {
      const p = prep(ci);
      const i = graph.consumers[ci].edges.indexOf(e);
      let own: tf.Tensor = tf.matMul(col(p.off, i), row(p.oaRowsConst, i));
      if (p.offG) own = tf.add(own, tf.matMul(col(p.offG, i), tf.sub(row(p.oaRows, i), row(p.oaRowsConst, i)) as tf.Tensor2D));
      return tf.add(actTerm(p, e, i), tf.reshape(own, [B, 1, d])) as tf.Tensor3D;
    };
    const flat = (x: tf.Tensor3D): tf.Tensor2D => tf.reshape(x, [B * T, d]);
    const dh = folded.dh;
    for (let l = 0; l < folded.nLayer; l++) {
      for (let h = 0; h < folded.nHead; h++) {
        const H = this.heads[l][h];
        const qi = graph.consumerIndex.get(`q-${l}-${h}`)!;
        const ki = graph.consumerIndex.get(`k-${l}-${h}`)!;
        const vi = graph.consumerIndex.get(`v-${l}-${h}`)!;
        const vEdges = graph.consumers[vi].edges.filter((e) => !absent?.[e]);
        if (vEdges.length === 0) continue;
        const pathProj = (map: Linear, ci: number) => (path: number): tf.Tensor3D => {
          const a = acts[path];
          if (!a) throw new Error(`internal: path ${graph.paths[path].id} is read but was not computed`);
          return tf.reshape(tf.mul(map(flat(a)), this.scale(ci)), [B, T, dh]);
        };
        const raw =
          headScores?.(l, h, { B, T, q: pathProj(H.q, qi), k: pathProj(H.k, ki) }) ??
          bmmNT(
            tf.reshape(tf.add(tf.mul(H.q(flat(consumerInput(qi))), this.scale(qi)), H.cQ), [B, T, dh]),
            tf.reshape(tf.add(tf.mul(H.k(flat(consumerInput(ki))), this.scale(ki)), H.cK), [B, T, dh]),
          );
        const scores = tf.add(tf.div(raw, Math.sqrt(dh)), batch.causal);
        const att = tf.softmax(scores);
        for (const e of vEdges) {
          const v = tf.reshape<tf.Rank.R3>(tf.mul(H.v(flat(valueInput(vi, e))), this.scale(vi)), [B, T, dh]);
          const z = tf.reshape(bmm(att as tf.Tensor3D, v), [B * T, dh]) as tf.Tensor2D;
          acts[graph.edges[e].creates!] = tf.reshape(H.o(z), [B, T, d]);
        }
      }
      graph.mlps.forEach((u, ui) => {
        if (u.layer !== l) return;
        const mi = u.consumer;
        let input: tf.Tensor3D;
        if (u.edge === null) {
          if (absent && graph.consumers[mi].edges.every((e) => absent[e])) return;
          input = consumerInput(mi);
        } else {
          // a split copy reads its one path like a value edge: m act + (1 - m) a, no b_c (method-pruning.md 2.2)
          if (absent?.[u.edge]) return;
          input = valueInput(mi, u.edge);
        }
        acts[u.path] = tf.reshape(this.mlps.apply(ui, flat(input), this.scale(mi)), [B, T, d]);
      });
    }
    if (this.capture) acts.forEach((a, p) => a && this.capture!(p, a));
    const li = graph.consumerIndex.get('lm_head')!;
    const logits = tf.add(tf.mul(this.unembed(flat(consumerInput(li))), this.scale(li)), this.unembedB);
    return tf.reshape(logits, [B, T, folded.V]);
  }

  /** Set only while pathMeans runs: sees every computed path activation of a forward pass. */
  private capture: ((path: number, act: tf.Tensor3D) => void) | undefined;

  /**
   * Mean activation (nPaths x d, float64) of every path over the real (non-pad) positions of the batches, with
   * every edge on; zero for paths never computed. Used to start split MLP copies at the unsplit MLP's linearisation.
   */
  pathMeans(batches: readonly Batch[]): Float64Array {
    const { d } = this.folded;
    const nPaths = this.graph.paths.length;
    const sum = new Float64Array(nPaths * d);
    let count = 0;
    try {
      for (const batch of batches) {
        const w = new Float32Array(batch.B * batch.T);
        batch.seqs.forEach((seq, b) => w.fill(1, b * batch.T, b * batch.T + seq.length));
        count += w.reduce((a, x) => a + x, 0);
        tf.tidy(() => {
          const weight = tf.tensor2d(w, [1, batch.B * batch.T]);
          this.capture = (p, act) => {
            const s = tf.matMul(weight, tf.reshape(act, [batch.B * batch.T, d])).dataSync();
            for (let i = 0; i < d; i++) sum[p * d + i] += s[i];
          };
          this.forward(batch, tf.ones([batch.B, this.graph.edges.length]) as tf.Tensor2D, null);
        });
      }
    } finally {
      this.capture = undefined;
    }
    return sum.map((x) => x / Math.max(1, count));
  }

  /** Faithfulness loss (method-pruning.md 3.5): KL averaged over scored tokens x vocab, or BCE to sigmoid(orig). */
  loss(batch: Batch, logits: tf.Tensor3D, objective: Objective): tf.Scalar {
    const V = this.folded.V;
    const w = tf.reshape(batch.weight, [batch.B, batch.T, 1]);
    let per: tf.Tensor;
    if (objective === 'ce') {
      const lp = tf.logSoftmax(logits);
      per = tf.mul(tf.exp(batch.target), tf.sub(batch.target, lp));
    } else {
      per = tf.add(tf.sub(tf.relu(logits), tf.mul(logits, batch.target)), tf.log1p(tf.exp(tf.neg(tf.abs(logits)))));
    }
    return tf.div(tf.sum(tf.mul(per, w)), Math.max(1, batch.nScored * V)) as tf.Scalar;
  }
}
