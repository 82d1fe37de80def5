// GPT-2 config.json: parsing (with every deviation from the plain HF GPT-2 network refused by name) and writing
// (the usual keys, so Hugging Face `transformers` loads what we save).
import { UserError } from '../util/errors';
import type { Gpt2Config } from './types';

const ACCEPTED_ARCHITECTURES = ['GPT2LMHeadModel', 'GPT2BCELMHeadModel'] as const;

/** Sanity bounds: far above the paper's models, low enough that a typo cannot request terabytes. */
const LIMITS = { nLayer: 128, nHead: 256, nEmbd: 16384, nPositions: 1 << 20, vocabSize: 1 << 20 };

/** Parses the text of a config.json; `file` names it in errors. */
export function parseGpt2Config(text: string, file: string): Gpt2Config {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new UserError(`not valid JSON (${err instanceof Error ? err.message : String(err)})`, file);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UserError('must be a JSON object', file);
  return configFromJson(raw as Record<string, unknown>, file);
}

export function configFromJson(c: Record<string, unknown>, file: string): Gpt2Config {
  const fail = (msg: string): never => {
    throw new UserError(msg, file);
  };
  const int = (key: string, max: number, min = 1): number => {
    const v = c[key];
    if (v === undefined) fail(`missing "${key}"`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      fail(`"${key}" must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
    }
    return v as number;
  };

  if (c.model_type !== undefined && c.model_type !== 'gpt2') {
    fail(`model_type "${String(c.model_type)}" is not supported: only GPT-2 ("gpt2") checkpoints can be loaded`);
  }
  const archs = c.architectures;
  if (!Array.isArray(archs) || archs.length === 0) {
    fail(`missing "architectures"; expected ["${ACCEPTED_ARCHITECTURES.join('"] or ["')}"]`);
  }
  const known = (archs as unknown[]).filter((a): a is Gpt2Config['architecture'] =>
    (ACCEPTED_ARCHITECTURES as readonly unknown[]).includes(a),
  );
  if (known.length !== 1 || (archs as unknown[]).length !== 1) {
    fail(
      `architecture ${JSON.stringify(archs)} is not supported; accepted: ${ACCEPTED_ARCHITECTURES.join(', ')} ` +
        '(GPT2BCELMHeadModel is the same network trained with per-token sigmoid outputs)',
    );
  }

  const activation = c.activation_function ?? 'gelu_new'; // HF's GPT2Config default
  if (activation !== 'gelu_new') {
    fail(`activation_function "${String(activation)}" is not supported: the forward pass implements gelu_new (tanh approximation) only`);
  }
  const nLayer = int('n_layer', LIMITS.nLayer);
  const nHead = int('n_head', LIMITS.nHead);
  const nEmbd = int('n_embd', LIMITS.nEmbd);
  const nPositions = int('n_positions', LIMITS.nPositions);
  const vocabSize = int('vocab_size', LIMITS.vocabSize);
  if (nEmbd % nHead !== 0) fail(`n_embd ${nEmbd} is not divisible by n_head ${nHead}`);
  if (c.n_inner !== undefined && c.n_inner !== null && c.n_inner !== 4 * nEmbd) {
    fail(`n_inner ${JSON.stringify(c.n_inner)} is not supported: the MLP width must be 4 * n_embd = ${4 * nEmbd} (or null)`);
  }
  const eps = c.layer_norm_epsilon ?? 1e-5;
  if (typeof eps !== 'number' || !(eps > 0) || eps > 1) fail(`"layer_norm_epsilon" must be a small positive number, got ${JSON.stringify(eps)}`);
  // Variants of the attention that would change the numbers; refused rather than silently computed wrong.
  if (c.scale_attn_weights === false) fail('scale_attn_weights = false is not supported (scores are divided by sqrt(d_head))');
  if (c.scale_attn_by_inverse_layer_idx === true) fail('scale_attn_by_inverse_layer_idx = true is not supported');
  if (c.add_cross_attention === true) fail('add_cross_attention = true is not supported (decoder-only GPT-2 only)');
  if (c.tie_word_embeddings === false) fail('tie_word_embeddings = false is not supported: the unembedding must be tied to wte');

  const tokenId = (key: string): number | undefined => {
    const v = c[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= vocabSize) {
      fail(`"${key}" must be a token id in 0..${vocabSize - 1}, got ${JSON.stringify(v)}`);
    }
    return v as number;
  };
  const config: Gpt2Config = {
    architecture: known[0],
    nLayer,
    nHead,
    nEmbd,
    nPositions,
    vocabSize,
    activation: 'gelu_new',
    lnEps: eps as number,
  };
  const bos = tokenId('bos_token_id');
  const eos = tokenId('eos_token_id');
  const pad = tokenId('pad_token_id');
  if (bos !== undefined) config.bosId = bos;
  if (eos !== undefined) config.eosId = eos;
  if (pad !== undefined) config.padId = pad;
  return config;
}

/** The config.json object for a config, with the keys transformers' GPT2Config writes (eval-mode dropout 0). */
export function configToJson(config: Gpt2Config, extra: { dropout?: number } = {}): Record<string, unknown> {
  const p = extra.dropout ?? 0;
  return {
    activation_function: config.activation,
    architectures: [config.architecture],
    attn_pdrop: p,
    bos_token_id: config.bosId ?? null,
    embd_pdrop: p,
    eos_token_id: config.eosId ?? null,
    initializer_range: 0.02,
    layer_norm_epsilon: config.lnEps,
    model_type: 'gpt2',
    n_embd: config.nEmbd,
    n_head: config.nHead,
    n_inner: null,
    n_layer: config.nLayer,
    n_positions: config.nPositions,
    pad_token_id: config.padId ?? null,
    reorder_and_upcast_attn: false,
    resid_pdrop: p,
    scale_attn_by_inverse_layer_idx: false,
    scale_attn_weights: true,
    summary_activation: null,
    summary_first_dropout: p,
    summary_proj_to_labels: true,
    summary_type: 'cls_index',
    summary_use_proj: true,
    torch_dtype: 'float32',
    use_cache: true,
    vocab_size: config.vocabSize,
  };
}

/** Head width d / H. */
export function headDim(config: Gpt2Config): number {
  return config.nEmbd / config.nHead;
}
