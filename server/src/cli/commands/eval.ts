// `rasp eval --model DIR`: the model's accuracy per length bin on fresh samples from its task (teacher-forced
// all-or-nothing scoring, tasks-and-models.md 1.5), computed from the weights alone.
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { initBackend } from '../../model/backend';
import { modelLogits, releaseTfModel } from '../../model/forward';
import { loadModel } from '../../model/load';
import { evaluateTask, type EvalResult } from '../../tasks/evaluate';
import { DEFAULT_BINS, getTask, parseLengthBins } from '../../tasks/index';
import { UserError } from '../../util/errors';
import { cancelOnSigint, intOption } from './train';

interface EvalCliOptions {
  model: string;
  task?: string;
  lengths?: string;
  samples: string;
  seed: string;
  batchTokens: string;
  json?: boolean;
}

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('Accuracy of a model on its task per length bin (fresh samples, teacher-forced exact match)')
    .requiredOption('--model <dir>', 'model folder (config.json + model.safetensors [+ rasp-model.json])')
    .option('--task <name>', 'task, when the folder has no model card and its name does not say')
    .option('--lengths <bins>', 'length bins, e.g. 0-50,51-100,101-150 (the default)')
    .option('--samples <n>', 'samples per bin', '200')
    .option('--seed <n>', 'sampling seed', '0')
    .option('--batch-tokens <n>', 'tokens per forward batch (memory vs speed)', '8192')
    .option('--json', 'print {"bins": [{"lengths": [lo, hi], "accuracy": a, "samples": n}, ...]} on stdout')
    .action(async (opts: EvalCliOptions) => {
      const bins = opts.lengths ? parseLengthBins(opts.lengths) : DEFAULT_BINS;
      const samples = intOption('samples', opts.samples, 1, 1_000_000);
      const seed = intOption('seed', opts.seed, 0, 2 ** 32 - 1);
      const batchTokens = intOption('batch-tokens', opts.batchTokens, 1, 1 << 24);
      const model = await loadModel(opts.model, opts.task === undefined ? {} : { task: opts.task });
      for (const w of model.warnings ?? []) process.stderr.write(`rasp: warning: ${w}\n`);
      const task = getTask(model.card.task);
      if (task.vocab.length !== model.config.vocabSize) {
        throw new UserError(`task ${task.name} has ${task.vocab.length} tokens but the model has vocab_size ${model.config.vocabSize}`, model.dir);
      }
      // Generators and oracles speak the task's ids: a card listing the tokens in another order cannot be scored.
      const clash = task.vocab.findIndex((t, i) => model.card.vocab[i] !== t);
      if (clash >= 0) {
        throw new UserError(
          `the model card's token ${clash} is "${model.card.vocab[clash]}" but task ${task.name} has "${task.vocab[clash]}" there`,
          model.dir,
        );
      }
      await initBackend();
      const { signal, dispose } = cancelOnSigint();
      const bar = process.stderr.isTTY
        ? new SingleBar({ stream: process.stderr, format: 'eval {bar} {value}/{total} sequences | {eta_formatted} left', hideCursor: true })
        : undefined;
      bar?.start(bins.length * samples, 0);
      let result: EvalResult;
      try {
        result = await evaluateTask(task, (batch) => modelLogits(model, batch, { maxTokensPerChunk: batchTokens, signal }), {
          bins,
          samples,
          seed,
          batchTokens,
          maxBatch: 256,
          signal,
          onProgress: (p) => bar?.update(p.done),
        });
      } finally {
        bar?.stop();
        dispose();
        releaseTfModel(model);
      }
      if (opts.json) {
        const out = { bins: result.bins.map((b) => ({ lengths: b.lengths, accuracy: b.accuracy, samples: b.samples })) };
        process.stdout.write(`${JSON.stringify(out)}\n`);
        return;
      }
      const lines = [`model ${model.dir}`, `task  ${task.name} (from ${describeSource(model.card.source)})`, '', 'lengths    accuracy  samples'];
      for (const b of result.bins) {
        lines.push(`${`${b.lengths[0]}-${b.lengths[1]}`.padEnd(10)} ${b.accuracy.toFixed(4).padStart(8)}  ${String(b.samples).padStart(7)}`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}

function describeSource(source: string): string {
  return source === 'card' ? 'the model card' : source === 'folder-name' ? 'the folder name' : '--task';
}
