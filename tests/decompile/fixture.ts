// A tiny GPT-2 for decompiler tests, built from seeded weights (no shared checkpoints needed).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveModel } from '../../server/src/model/load';
import { randomWeights } from '../../server/src/model/weights';
import type { Gpt2Config, Gpt2Weights } from '../../server/src/model/types';
import { getTask } from '../../server/src/tasks';
import { Rng } from '../../server/src/util/rng';

export interface TinyModel {
  dir: string;
  config: Gpt2Config;
  weights: Gpt2Weights;
}

export async function tinyModel(taskName = 'bin_majority', options: { layers?: number; heads?: number; width?: number; seed?: number; std?: number } = {}): Promise<TinyModel> {
  const task = getTask(taskName);
  const config: Gpt2Config = {
    architecture: task.objective === 'bce' ? 'GPT2BCELMHeadModel' : 'GPT2LMHeadModel',
    nLayer: options.layers ?? 1,
    nHead: options.heads ?? 1,
    nEmbd: options.width ?? 8,
    nPositions: task.nPositions,
    vocabSize: task.vocab.length,
    activation: 'gelu_new',
    lnEps: 1e-5,
  };
  const rng = new Rng(options.seed ?? 1);
  const weights = randomWeights(config, () => rng.next(), options.std ?? 0.5);
  const dir = join(mkdtempSync(join(tmpdir(), 'rasp-decompile-')), `${taskName}-tiny`);
  await saveModel(dir, config, weights, { task: task.name, objective: task.objective, vocab: [...task.vocab], source: 'card' });
  return { dir, config, weights };
}
