// The re-parameterized model as a graph of residual *paths* (method-pruning.md 1.4, 2.1-2.2).
//
// Under LLN-A every consumer of the residual stream (q, k, v of each head, each MLP, the unembedding) reads a
// sum of path activations plus a constant, so the model is a sum over paths. Paths are named right to left
// (`attn_output-1-0-mlp-0` = MLP 0 -> value of head 1.0).
//
// MLPs come in two forms. Unsplit (the default graph): one `mlp-L` vertex reads the sum of its inputs, which keeps
// the re-parameterization exact. Split (`{ splitMlps: true }`, method-pruning.md 2.2): one MLP copy per input path
// p, a consumer `mlp-L-<p>` with a single edge that creates the path `mlp-L-<p>` (like a value edge creates a head
// path); the copies are approximations that start from the MLP's weights and are fine-tuned (see README).
//
// Edges are (consumer, source path) pairs; a stage-1 "component" edge is the group of path edges that share
// the consumer's vertex (for split copies: their MLP) and the source's outermost component, so stage 1 and
// stage 2 use one graph with tied or untied masks.

export type PathKind = 'token' | 'pos' | 'head' | 'mlp';

export interface PathVar {
  /** `wte`, `wpe`, `attn_output-L-H-<inner>` or `mlp-L`. */
  id: string;
  index: number;
  kind: PathKind;
  /** -1 for the embeddings. */
  layer: number;
  head: number | null;
  /** The value path a head path carries. */
  inner?: string;
  /** Stage-1 vertex: `wte`, `wpe`, `attn-L-H` or `mlp-L`. */
  component: string;
}

export type ConsumerKind = 'q' | 'k' | 'v' | 'mlp' | 'lm_head';

export interface Consumer {
  /** `q-L-H`, `k-L-H`, `v-L-H`, `mlp-L` or `lm_head`. */
  id: string;
  index: number;
  kind: ConsumerKind;
  layer: number;
  head: number | null;
  /** Edge indices into PathGraph.edges, in path order. */
  edges: number[];
  /** Stage-1 vertex the consumer belongs to: its id, except split MLP copies (`mlp-L`). */
  vertex: string;
}

export interface Edge {
  index: number;
  consumer: number;
  source: number;
  /** Index of the stage-1 group (consumer x source component). */
  group: number;
  /** For v edges and split-MLP edges: the path this edge creates. */
  creates?: number;
}

/** One MLP (unsplit) or MLP copy (split): the consumer it reads through and the path it writes. */
export interface MlpUnit {
  layer: number;
  consumer: number;
  path: number;
  /** Split copies: the single input edge (which creates `path`); null for an unsplit MLP. */
  edge: number | null;
}

export interface GraphOptions {
  /** One MLP copy per input path (method-pruning.md 2.2) instead of one MLP reading their sum. */
  splitMlps?: boolean;
}

export interface PathGraph {
  nLayer: number;
  nHead: number;
  splitMlps: boolean;
  paths: PathVar[];
  consumers: Consumer[];
  edges: Edge[];
  /** Stage-1 groups, each a list of edge indices. */
  groups: { key: string; edges: number[] }[];
  pathIndex: Map<string, number>;
  consumerIndex: Map<string, number>;
  /** MLP units in layer order (the order of MaskedState.mlps). */
  mlps: MlpUnit[];
  /** Per consumer: its index in `mlps`, or -1. */
  mlpOfConsumer: Int32Array;
}

export function buildPathGraph(nLayer: number, nHead: number, options: GraphOptions = {}): PathGraph {
  const splitMlps = options.splitMlps === true;
  const mlps: MlpUnit[] = [];
  const paths: PathVar[] = [];
  const consumers: Consumer[] = [];
  const edges: Edge[] = [];
  const groupIndex = new Map<string, number>();
  const groups: { key: string; edges: number[] }[] = [];
  const pathIndex = new Map<string, number>();
  const consumerIndex = new Map<string, number>();

  const addPath = (p: Omit<PathVar, 'index'>): number => {
    const index = paths.length;
    paths.push({ ...p, index });
    pathIndex.set(p.id, index);
    return index;
  };
  const addConsumer = (id: string, kind: ConsumerKind, layer: number, head: number | null, vertex = id): Consumer => {
    const c: Consumer = { id, index: consumers.length, kind, layer, head, edges: [], vertex };
    consumers.push(c);
    consumerIndex.set(id, c.index);
    return c;
  };
  const addEdge = (c: Consumer, source: number): Edge => {
    const key = `${c.vertex}|${paths[source].component}`;
    let g = groupIndex.get(key);
    if (g === undefined) {
      g = groups.length;
      groups.push({ key, edges: [] });
      groupIndex.set(key, g);
    }
    const e: Edge = { index: edges.length, consumer: c.index, source, group: g };
    edges.push(e);
    groups[g].edges.push(e.index);
    c.edges.push(e.index);
    return e;
  };

  addPath({ id: 'wte', kind: 'token', layer: -1, head: null, component: 'wte' });
  addPath({ id: 'wpe', kind: 'pos', layer: -1, head: null, component: 'wpe' });
  let available = [0, 1];
  for (let l = 0; l < nLayer; l++) {
    const layerPaths: number[] = [];
    for (let h = 0; h < nHead; h++) {
      const q = addConsumer(`q-${l}-${h}`, 'q', l, h);
      const k = addConsumer(`k-${l}-${h}`, 'k', l, h);
      const v = addConsumer(`v-${l}-${h}`, 'v', l, h);
      for (const p of available) addEdge(q, p);
      for (const p of available) addEdge(k, p);
      for (const p of available) {
        const e = addEdge(v, p);
        const created = addPath({
          id: `attn_output-${l}-${h}-${paths[p].id}`,
          kind: 'head',
          layer: l,
          head: h,
          inner: paths[p].id,
          component: `attn-${l}-${h}`,
        });
        e.creates = created;
        layerPaths.push(created);
      }
    }
    // The MLP of layer l also reads that layer's attention output (method-pruning.md 2.1).
    const mlpInputs = [...available, ...layerPaths];
    if (splitMlps) {
      const copies: number[] = [];
      for (const p of mlpInputs) {
        const id = `mlp-${l}-${paths[p].id}`;
        const c = addConsumer(id, 'mlp', l, null, `mlp-${l}`);
        const e = addEdge(c, p);
        const created = addPath({ id, kind: 'mlp', layer: l, head: null, inner: paths[p].id, component: `mlp-${l}` });
        e.creates = created;
        mlps.push({ layer: l, consumer: c.index, path: created, edge: e.index });
        copies.push(created);
      }
      available = [...mlpInputs, ...copies];
    } else {
      const m = addConsumer(`mlp-${l}`, 'mlp', l, null);
      for (const p of mlpInputs) addEdge(m, p);
      const mlpPath = addPath({ id: `mlp-${l}`, kind: 'mlp', layer: l, head: null, component: `mlp-${l}` });
      mlps.push({ layer: l, consumer: m.index, path: mlpPath, edge: null });
      available = [...mlpInputs, mlpPath];
    }
  }
  const lm = addConsumer('lm_head', 'lm_head', nLayer, null);
  for (const p of available) addEdge(lm, p);
  const mlpOfConsumer = new Int32Array(consumers.length).fill(-1);
  mlps.forEach((u, i) => (mlpOfConsumer[u.consumer] = i));
  return { nLayer, nHead, splitMlps, paths, consumers, edges, groups, pathIndex, consumerIndex, mlps, mlpOfConsumer };
}

/** The MLP units of one layer (one unsplit MLP, or its split copies). */
export function mlpUnitsOf(graph: PathGraph, layer: number): MlpUnit[] {
  return graph.mlps.filter((u) => u.layer === layer);
}

/**
 * Dangling-edge pruning (method-pruning.md 3.4) of one mask row, in place: an edge is present when m > 0.
 * A head path (split MLP path) lives if its own v (input) edge is present and reads a live source; an unsplit MLP
 * lives if any present input is live; then edges whose consumer feeds nothing that reaches the logits are
 * dropped. Unlike the original (one pass each way) this iterates to a fixpoint, so no dead edge survives.
 */
export function pruneDangling(graph: PathGraph, m: Float32Array, offset = 0): void {
  const { paths, consumers, edges } = graph;
  const present = (e: number): boolean => m[offset + e] > 0;
  const kill = (e: number): void => {
    m[offset + e] = 0;
  };
  for (let iter = 0; iter < 8; iter++) {
    let changed = false;
    // forward reachability
    const live = new Uint8Array(paths.length);
    live[0] = 1;
    live[1] = 1;
    for (let l = 0; l < graph.nLayer; l++) {
      for (let h = 0; h < graph.nHead; h++) {
        // [quirk] the original also requires a live q and k input; but a head whose query (key) inputs are all
        // ablated still attends, with a constant query (key): key-only scores (uniform attention). Killing it
        // would be a jump in the loss that the mask gradient never sees, so only the value path decides here.
        const v = consumers[graph.consumerIndex.get(`v-${l}-${h}`)!];
        for (const e of v.edges) {
          const edge = edges[e];
          if (present(e) && live[edge.source] === 1) live[edge.creates!] = 1;
        }
      }
      for (const u of graph.mlps) {
        if (u.layer !== l) continue;
        if (consumers[u.consumer].edges.some((e) => present(e) && live[edges[e].source] === 1)) live[u.path] = 1;
      }
    }
    // a consumer is "fed" when the vertex it belongs to is live
    const consumerLive = (c: Consumer): boolean => {
      if (c.kind === 'lm_head') return true;
      if (c.kind === 'mlp') return live[graph.mlps[graph.mlpOfConsumer[c.index]].path] === 1;
      const v = consumers[graph.consumerIndex.get(`v-${c.layer}-${c.head}`)!];
      return v.edges.some((e) => live[edges[e].creates!] === 1);
    };
    for (const c of consumers) {
      const cl = consumerLive(c);
      for (const e of c.edges) {
        if (!present(e)) continue;
        const edge = edges[e];
        const targetLive = edge.creates !== undefined ? live[edge.creates] === 1 : cl;
        if (live[edge.source] !== 1 || !targetLive) {
          kill(e);
          changed = true;
        }
      }
    }
    // backward reachability from the logits
    const useful = new Uint8Array(paths.length);
    const consumerUseful = new Uint8Array(consumers.length);
    consumerUseful[graph.consumerIndex.get('lm_head')!] = 1;
    const markSources = (c: Consumer): void => {
      for (const e of c.edges) if (present(e)) useful[edges[e].source] = 1;
    };
    markSources(consumers[graph.consumerIndex.get('lm_head')!]);
    for (let l = graph.nLayer - 1; l >= 0; l--) {
      for (const u of graph.mlps) {
        if (u.layer !== l || useful[u.path] !== 1) continue;
        consumerUseful[u.consumer] = 1;
        markSources(consumers[u.consumer]);
      }
      for (let h = 0; h < graph.nHead; h++) {
        const v = consumers[graph.consumerIndex.get(`v-${l}-${h}`)!];
        let headUseful = false;
        for (const e of v.edges) {
          if (present(e) && useful[edges[e].creates!] === 1) {
            headUseful = true;
            useful[edges[e].source] = 1;
          }
        }
        if (headUseful) {
          for (const kind of ['q', 'k'] as const) {
            const ci = graph.consumerIndex.get(`${kind}-${l}-${h}`)!;
            consumerUseful[ci] = 1;
            markSources(consumers[ci]);
          }
          consumerUseful[v.index] = 1;
        }
      }
    }
    for (const c of consumers) {
      for (const e of c.edges) {
        if (!present(e)) continue;
        const created = edges[e].creates;
        const ok = created !== undefined ? useful[created] === 1 : consumerUseful[c.index] === 1;
        if (!ok) {
          kill(e);
          changed = true;
        }
      }
    }
    if (!changed) break;
  }
}
