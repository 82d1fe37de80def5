// The model's own activations for the debugger's "Model" scope: every head's real attention pattern and the
// logits of the original GPT-2, from the project's forward pass (server/src/model/forward.ts) run once on the
// debugged input with attention recorded. No vscode imports.
import * as tf from '@tensorflow/tfjs';
import type { Program } from '../../../server/src/program/types';
import type { LoadedModel } from '../../../server/src/model/types';
import { forward, makeBatch, releaseTfModel, tfModelOf } from '../../../server/src/model/forward';
import { UserError } from '../../../server/src/util/errors';

export interface ModelActivations {
  n: number;
  /** Logits over the *program's* vocabulary order, n x V. */
  logits: Float64Array;
  /** The causal attention pattern (n x n) of a head, undefined when the model has no such head. */
  attention(layer: number, head: number): Float64Array | undefined;
  nLayer: number;
  nHead: number;
}

/** Maps program token ids to model ids by token string (a program may list its vocabulary in another order). */
export function vocabMapping(program: Program, model: LoadedModel): number[] {
  const modelVocab = model.card.vocab;
  return program.header.vocab.map((tok) => {
    const id = modelVocab.indexOf(tok);
    if (id < 0) throw new UserError(`token ${JSON.stringify(tok)} of the program is not in the model's vocabulary (${modelVocab.join(' ')})`, model.dir);
    return id;
  });
}

export async function traceModel(program: Program, model: LoadedModel, tokens: number[]): Promise<ModelActivations> {
  const toModel = vocabMapping(program, model);
  const n = tokens.length;
  const { nLayer, nHead, vocabSize } = model.config;
  if (n === 0) {
    return { n, logits: new Float64Array(0), nLayer, nHead, attention: () => undefined };
  }
  const tm = await tfModelOf(model);
  let outputs: tf.Tensor[] = [];
  try {
    const batch = makeBatch(model.config, [tokens.map((t) => toModel[t])]);
    outputs = tf.tidy(() => {
      const out = forward(tm, batch, { record: { attention: true } });
      return [out.logits, ...(out.attention ?? []).flat()];
    });
    const [logitsT, ...patternT] = outputs;
    const raw = await logitsT.data();
    const patterns = await Promise.all(patternT.map(async (t) => Float64Array.from(await t.data())));
    // Reorder the model's logits into the program's vocabulary order.
    const v = toModel.length;
    const logits = new Float64Array(n * v);
    for (let i = 0; i < n; i++) for (let c = 0; c < v; c++) logits[i * v + c] = raw[i * vocabSize + toModel[c]];
    return {
      n,
      logits,
      nLayer,
      nHead,
      attention: (layer, head) => (layer >= 0 && layer < nLayer && head >= 0 && head < nHead ? patterns[layer * nHead + head] : undefined),
    };
  } finally {
    for (const t of outputs) t.dispose();
    // One trace per launch: the uploaded weights are not needed afterwards.
    releaseTfModel(model);
  }
}
