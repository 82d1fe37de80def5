// Hugging Face GPT-2 tensor names <-> the structured Gpt2Weights view, with every shape checked against the config.
import { UserError } from '../util/errors';
import type { BlockWeights, Gpt2Config, Gpt2Weights, LayerNormWeights, Tensor } from './types';

/** Buffers older transformers versions saved next to the weights; they hold the causal mask, not parameters. */
const IGNORED_BUFFER = /^transformer\.h\.\d+\.attn\.(bias|masked_bias)$/;

/** Expected name -> shape for a config (lm_head is tied and not stored). */
export function expectedShapes(config: Gpt2Config): Map<string, number[]> {
  const d = config.nEmbd;
  const m = new Map<string, number[]>([
    ['transformer.wte.weight', [config.vocabSize, d]],
    ['transformer.wpe.weight', [config.nPositions, d]],
    ['transformer.ln_f.weight', [d]],
    ['transformer.ln_f.bias', [d]],
  ]);
  for (let i = 0; i < config.nLayer; i++) {
    const p = `transformer.h.${i}.`;
    m.set(`${p}ln_1.weight`, [d]);
    m.set(`${p}ln_1.bias`, [d]);
    m.set(`${p}attn.c_attn.weight`, [d, 3 * d]);
    m.set(`${p}attn.c_attn.bias`, [3 * d]);
    m.set(`${p}attn.c_proj.weight`, [d, d]);
    m.set(`${p}attn.c_proj.bias`, [d]);
    m.set(`${p}ln_2.weight`, [d]);
    m.set(`${p}ln_2.bias`, [d]);
    m.set(`${p}mlp.c_fc.weight`, [d, 4 * d]);
    m.set(`${p}mlp.c_fc.bias`, [4 * d]);
    m.set(`${p}mlp.c_proj.weight`, [4 * d, d]);
    m.set(`${p}mlp.c_proj.bias`, [d]);
  }
  return m;
}

/** Builds Gpt2Weights from a name -> tensor map; `file` names the weights file in errors. */
export function weightsFromTensors(config: Gpt2Config, tensors: Map<string, Tensor>, file: string): Gpt2Weights {
  const expected = expectedShapes(config);
  const missing = [...expected.keys()].filter((k) => !tensors.has(k));
  if (missing.length > 0) {
    throw new UserError(
      `missing ${missing.length} tensor(s) for a ${config.nLayer}-layer GPT-2: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}`,
      file,
    );
  }
  for (const [name, t] of tensors) {
    const want = expected.get(name);
    if (want) {
      if (!sameShape(t.shape, want)) {
        throw new UserError(`tensor "${name}" has shape [${t.shape.join(', ')}], but config.json implies [${want.join(', ')}]`, file);
      }
    } else if (name === 'lm_head.weight') {
      // Tolerated only as an explicit copy of the tied embedding.
      const wte = tensors.get('transformer.wte.weight') as Tensor;
      if (!sameShape(t.shape, wte.shape) || !t.data.every((v, i) => v === wte.data[i])) {
        throw new UserError('lm_head.weight differs from transformer.wte.weight: untied unembeddings are not supported', file);
      }
    } else if (!IGNORED_BUFFER.test(name)) {
      const hint = /^transformer\.h\.(\d+)\./.exec(name);
      const why = hint && Number(hint[1]) >= config.nLayer ? ` (config.json says n_layer = ${config.nLayer})` : '';
      throw new UserError(`unexpected tensor "${name}"${why}: not part of a GPT-2 LM head model`, file);
    }
  }
  const get = (name: string): Tensor => tensors.get(name) as Tensor;
  const ln = (p: string): LayerNormWeights => ({ weight: get(`${p}.weight`), bias: get(`${p}.bias`) });
  const blocks: BlockWeights[] = [];
  for (let i = 0; i < config.nLayer; i++) {
    const p = `transformer.h.${i}`;
    blocks.push({
      ln1: ln(`${p}.ln_1`),
      attn: {
        cAttnW: get(`${p}.attn.c_attn.weight`),
        cAttnB: get(`${p}.attn.c_attn.bias`),
        cProjW: get(`${p}.attn.c_proj.weight`),
        cProjB: get(`${p}.attn.c_proj.bias`),
      },
      ln2: ln(`${p}.ln_2`),
      mlp: {
        fcW: get(`${p}.mlp.c_fc.weight`),
        fcB: get(`${p}.mlp.c_fc.bias`),
        projW: get(`${p}.mlp.c_proj.weight`),
        projB: get(`${p}.mlp.c_proj.bias`),
      },
    });
  }
  return { wte: get('transformer.wte.weight'), wpe: get('transformer.wpe.weight'), blocks, lnF: ln('transformer.ln_f') };
}

/** The HF tensor map of a weights view (lm_head omitted: it is tied). Checks shapes against the config. */
export function tensorsFromWeights(config: Gpt2Config, weights: Gpt2Weights): Map<string, Tensor> {
  const out = new Map<string, Tensor>([
    ['transformer.wte.weight', weights.wte],
    ['transformer.wpe.weight', weights.wpe],
    ['transformer.ln_f.weight', weights.lnF.weight],
    ['transformer.ln_f.bias', weights.lnF.bias],
  ]);
  if (weights.blocks.length !== config.nLayer) {
    throw new UserError(`weights have ${weights.blocks.length} blocks but the config says n_layer = ${config.nLayer}`);
  }
  weights.blocks.forEach((b, i) => {
    const p = `transformer.h.${i}.`;
    out.set(`${p}ln_1.weight`, b.ln1.weight);
    out.set(`${p}ln_1.bias`, b.ln1.bias);
    out.set(`${p}attn.c_attn.weight`, b.attn.cAttnW);
    out.set(`${p}attn.c_attn.bias`, b.attn.cAttnB);
    out.set(`${p}attn.c_proj.weight`, b.attn.cProjW);
    out.set(`${p}attn.c_proj.bias`, b.attn.cProjB);
    out.set(`${p}ln_2.weight`, b.ln2.weight);
    out.set(`${p}ln_2.bias`, b.ln2.bias);
    out.set(`${p}mlp.c_fc.weight`, b.mlp.fcW);
    out.set(`${p}mlp.c_fc.bias`, b.mlp.fcB);
    out.set(`${p}mlp.c_proj.weight`, b.mlp.projW);
    out.set(`${p}mlp.c_proj.bias`, b.mlp.projB);
  });
  const expected = expectedShapes(config);
  for (const [name, t] of out) {
    const want = expected.get(name) as number[];
    if (!sameShape(t.shape, want) || t.data.length !== want.reduce((a, b) => a * b, 1)) {
      throw new UserError(`weight "${name}" has shape [${t.shape.join(', ')}] (${t.data.length} values), expected [${want.join(', ')}]`);
    }
  }
  return out;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Random GPT-2 weights (N(0, std) matrices, LN weight 1 +- noise), for tests, benches and training init. */
export function randomWeights(config: Gpt2Config, rand: () => number, std = 0.02): Gpt2Weights {
  const normal = (): number => {
    // Box-Muller from the caller's uniform source, so results are reproducible from a seed.
    const u = Math.max(rand(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  };
  const tensor = (shape: number[], f: () => number): Tensor => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = f();
    return { shape, data };
  };
  const mat = (shape: number[]): Tensor => tensor(shape, () => std * normal());
  const ln = (d: number): LayerNormWeights => ({ weight: tensor([d], () => 1 + 0.1 * normal()), bias: mat([d]) });
  const d = config.nEmbd;
  const blocks: BlockWeights[] = [];
  for (let i = 0; i < config.nLayer; i++) {
    blocks.push({
      ln1: ln(d),
      attn: { cAttnW: mat([d, 3 * d]), cAttnB: mat([3 * d]), cProjW: mat([d, d]), cProjB: mat([d]) },
      ln2: ln(d),
      mlp: { fcW: mat([d, 4 * d]), fcB: mat([4 * d]), projW: mat([4 * d, d]), projB: mat([d]) },
    });
  }
  return { wte: mat([config.vocabSize, d]), wpe: mat([config.nPositions, d]), blocks, lnF: ln(d) };
}
