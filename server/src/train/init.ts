// Fresh weights for training, initialised as Hugging Face's GPT2PreTrainedModel does.
import type { Gpt2Config, Gpt2Weights, Tensor } from '../model/types';
import type { Rng } from '../util/rng';

/**
 * Hugging Face's GPT-2 initialisation: weights and embeddings ~ N(0, 0.02), biases 0, LayerNorm 1/0, and the two
 * residual output projections ~ N(0, 0.02 / sqrt(2 n_layer)).
 */
export function initWeights(config: Gpt2Config, rng: Rng): Gpt2Weights {
  const d = config.nEmbd;
  const normal = (shape: number[], std: number): Tensor => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = rng.normal() * std;
    return { shape, data };
  };
  const fill = (n: number, v: number): Tensor => ({ shape: [n], data: new Float32Array(n).fill(v) });
  const residualStd = 0.02 / Math.sqrt(2 * config.nLayer);
  return {
    wte: normal([config.vocabSize, d], 0.02),
    wpe: normal([config.nPositions, d], 0.02),
    blocks: Array.from({ length: config.nLayer }, () => ({
      ln1: { weight: fill(d, 1), bias: fill(d, 0) },
      attn: { cAttnW: normal([d, 3 * d], 0.02), cAttnB: fill(3 * d, 0), cProjW: normal([d, d], residualStd), cProjB: fill(d, 0) },
      ln2: { weight: fill(d, 1), bias: fill(d, 0) },
      mlp: { fcW: normal([d, 4 * d], 0.02), fcB: fill(4 * d, 0), projW: normal([4 * d, d], residualStd), projB: fill(d, 0) },
    })),
    lnF: { weight: fill(d, 1), bias: fill(d, 0) },
  };
}
