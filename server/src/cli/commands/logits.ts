// `rasp logits --model DIR --input "<bos> 3 1 2 <sep>" [--json]`: the model's logits at every position of one input
// (positions from 0, or --offset). Tokens are mapped through the model card's vocabulary.
import type { Command } from 'commander';
import { initBackend } from '../../model/backend';
import { modelLogits } from '../../model/forward';
import { loadModel } from '../../model/load';
import { referenceLogits } from '../../model/reference';
import type { LoadedModel } from '../../model/types';
import { UserError } from '../../util/errors';

interface LogitsOptions {
  model: string;
  input: string;
  task?: string;
  offset: string;
  reference?: boolean;
  json?: boolean;
}

export function registerLogits(program: Command): void {
  program
    .command('logits')
    .description("Print a model's logits at every position of one input (one row per position, vocabulary order)")
    .requiredOption('--model <dir>', 'model folder (config.json + model.safetensors [+ rasp-model.json])')
    .requiredOption('--input <tokens>', 'the whole input as space-separated tokens, e.g. "<bos> 3 1 2 <sep>"')
    .option('--task <name>', 'task, when the folder has no model card and its name does not say')
    .option('--offset <n>', 'position id of the first token', '0')
    .option('--reference', 'compute with the float64 reference implementation instead of tfjs')
    .option('--json', 'print {"logits": [[...], ...]} on stdout')
    .action(async (opts: LogitsOptions) => {
      const model = await loadModel(opts.model, opts.task === undefined ? {} : { task: opts.task });
      for (const w of model.warnings ?? []) process.stderr.write(`rasp: warning: ${w}\n`);
      const ids = tokenize(model, opts.input);
      const offset = Number(opts.offset);
      if (!Number.isInteger(offset) || offset < 0) throw new UserError(`--offset must be a non-negative integer, got '${opts.offset}'`);
      const P = model.config.nPositions;
      if (offset + ids.length > P) {
        throw new UserError(
          `the input has ${ids.length} tokens${offset ? ` from position ${offset}` : ''} but the model has only ${P} positions`,
        );
      }
      const V = model.config.vocabSize;
      let flat: ArrayLike<number>;
      if (opts.reference) {
        flat = referenceLogits(model.config, model.weights, ids, offset);
      } else {
        await initBackend();
        flat = (await modelLogits(model, [ids], { offset }))[0];
      }
      const rows = ids.map((_, t) => Array.from({ length: V }, (_, v) => flat[t * V + v]));
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ logits: rows })}\n`);
        return;
      }
      process.stdout.write(formatTable(model, ids, rows));
    });
}

/** Maps space-separated token strings to ids through the card's vocabulary. */
export function tokenize(model: LoadedModel, input: string): number[] {
  const vocab = model.card.vocab;
  const index = new Map(vocab.map((t, i) => [t, i]));
  const tokens = input.split(/\s+/).filter((t) => t.length > 0);
  if (tokens.length === 0) throw new UserError('--input is empty: give space-separated tokens, e.g. "<bos> 1 0 <sep>"');
  return tokens.map((tok, i) => {
    const id = index.get(tok);
    if (id === undefined) {
      const shown = vocab.length <= 24 ? vocab.join(' ') : `${vocab.slice(0, 20).join(' ')} ... ${vocab.slice(-4).join(' ')}`;
      throw new UserError(`unknown token "${tok}" at input position ${i}; the vocabulary of task ${model.card.task} is: ${shown}`);
    }
    return id;
  });
}

function formatTable(model: LoadedModel, ids: number[], rows: number[][]): string {
  const vocab = model.card.vocab;
  const bce = model.card.objective === 'bce';
  const lines = [`model ${model.dir} (task ${model.card.task}, ${bce ? 'sigmoid: tokens with logit > 0' : 'argmax and top logits'})`];
  rows.forEach((row, t) => {
    const order = row.map((x, v) => [x, v] as const).sort((a, b) => b[0] - a[0]);
    const top = order
      .slice(0, 3)
      .map(([x, v]) => `${vocab[v]}=${x.toFixed(3)}`)
      .join('  ');
    const decision = bce
      ? `{${row
          .map((x, v) => (x > 0 ? vocab[v] : ''))
          .filter((s) => s !== '')
          .join(', ')}}`
      : vocab[order[0][1]];
    lines.push(`${String(t).padStart(4)}  ${vocab[ids[t]].padEnd(6)} -> ${decision.padEnd(8)}  ${top}`);
  });
  return `${lines.join('\n')}\n`;
}
