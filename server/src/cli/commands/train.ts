// `rasp train`: trains a GPT-2 on a task with the paper's recipe and writes a standard checkpoint
// (config.json, model.safetensors, rasp-model.json, acc.txt, training.json). Ctrl-C cancels and writes nothing.
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { parseLengthBins } from '../../tasks/index';
import { trainModel, type TrainProgress } from '../../train/index';
import { UserError } from '../../util/errors';

interface TrainCliOptions {
  task: string;
  layers: string;
  heads: string;
  width: string;
  out: string;
  steps: string;
  lr: string;
  batch: string;
  seed: string;
  dropout: string;
  lengths: string;
  evalEvery: string;
  evalSamples: string;
  finalSamples: string;
  maxMinutes?: string;
  force?: boolean;
  json?: boolean;
}

/** Parses an integer option; a UserError naming it otherwise. */
export function intOption(name: string, text: string, min: number, max: number): number {
  const v = Number(text);
  if (!/^\s*-?\d+\s*$/.test(text) || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new UserError(`--${name} must be an integer from ${min} to ${max}, got "${text}"`);
  }
  return v;
}

function numberOption(name: string, text: string): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v)) throw new UserError(`--${name} must be a number, got "${text}"`);
  return v;
}

/** An AbortSignal fired by the first Ctrl-C (SIGINT) or SIGTERM; a second one exits at once. */
export function cancelOnSigint(): { signal: AbortSignal; dispose: () => void } {
  const ac = new AbortController();
  const onSignal = (): void => {
    if (ac.signal.aborted) process.exit(130);
    ac.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: ac.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description("Train a GPT-2 on a task with the paper's recipe (AdamW, linear decay, early stop at 1.0 on 0-50)")
    .requiredOption('--task <name>', 'task name (e.g. bce_D2, bin_majority, unique_copy)')
    .requiredOption('--layers <n>', 'transformer layers')
    .requiredOption('--heads <n>', 'attention heads per layer')
    .requiredOption('--width <d>', 'model width n_embd (divisible by heads)')
    .requiredOption('--out <dir>', 'output model folder (must not exist or be empty, unless --force)')
    .option('--steps <n>', 'maximum optimisation steps (the learning rate decays linearly over them)', '30000')
    .option('--lr <x>', 'peak learning rate', '1e-3')
    .option('--batch <n>', 'sequences per step', '64')
    .option('--seed <n>', 'random seed (weights, data, dropout)', '0')
    .option('--dropout <p>', 'dropout probability (embeddings, attention, residual outputs)', '0')
    .option('--lengths <lo-hi>', 'training length range', '0-50')
    .option('--eval-every <n>', 'evaluate on the training range every n steps; stop when it is 1.0', '250')
    .option('--eval-samples <n>', 'samples for that evaluation', '200')
    .option('--final-samples <n>', 'samples per bin (0-50, 51-100, 101-150) of the evaluation recorded in the card', '200')
    .option('--max-minutes <m>', 'stop training after this long and save what there is')
    .option('--force', 'replace an existing output folder')
    .option('--json', 'print the training summary as JSON on stdout')
    .action(async (opts: TrainCliOptions) => {
      const ranges = parseLengthBins(opts.lengths);
      if (ranges.length !== 1) throw new UserError('--lengths takes one range for training, e.g. 0-50');
      const maxMinutes = opts.maxMinutes === undefined ? undefined : numberOption('max-minutes', opts.maxMinutes);
      if (maxMinutes !== undefined && !(maxMinutes > 0)) throw new UserError('--max-minutes must be positive');
      const { signal, dispose } = cancelOnSigint();
      const bar = process.stderr.isTTY
        ? new SingleBar({
            stream: process.stderr,
            format: 'train {bar} {value}/{total} steps | loss {loss} | acc 0-50 {acc} | {phase} | {duration_formatted}',
            hideCursor: true,
          })
        : undefined;
      let lastLog = 0;
      const onProgress = (p: TrainProgress): void => {
        const acc = Number.isNaN(p.accuracy) ? '-' : p.accuracy.toFixed(3);
        if (bar) {
          if (p.step === 0 && p.phase === 'train') return;
          bar.update(p.step, { loss: p.loss.toFixed(4), acc, phase: p.phase });
          return;
        }
        // Without a terminal: one line per evaluation and at most one every 10 s.
        if (p.phase !== 'train' || p.seconds - lastLog >= 10) {
          lastLog = p.seconds;
          process.stderr.write(`step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)} acc0-50 ${acc} ${p.phase} ${p.seconds.toFixed(0)}s\n`);
        }
      };
      const steps = intOption('steps', opts.steps, 1, 10_000_000);
      bar?.start(steps, 0, { loss: '-', acc: '-', phase: 'train' });
      try {
        const result = await trainModel(
          {
            task: opts.task,
            layers: intOption('layers', opts.layers, 1, 64),
            heads: intOption('heads', opts.heads, 1, 64),
            width: intOption('width', opts.width, 1, 4096),
            out: opts.out,
            force: opts.force ?? false,
            steps,
            lr: numberOption('lr', opts.lr),
            batch: intOption('batch', opts.batch, 1, 4096),
            seed: intOption('seed', opts.seed, 0, 2 ** 32 - 1),
            dropout: numberOption('dropout', opts.dropout),
            lengths: ranges[0],
            evalEvery: intOption('eval-every', opts.evalEvery, 1, 10_000_000),
            evalSamples: intOption('eval-samples', opts.evalSamples, 1, 1_000_000),
            finalSamples: intOption('final-samples', opts.finalSamples, 1, 1_000_000),
            ...(maxMinutes === undefined ? {} : { maxSeconds: maxMinutes * 60 }),
          },
          { signal, onProgress },
        );
        bar?.stop();
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(result)}\n`);
          return;
        }
        const lines = [
          `wrote ${result.out}`,
          `task ${result.task}: ${result.steps} steps in ${result.seconds.toFixed(1)} s (${result.stepsPerSecond.toFixed(1)} steps/s), stopped by ${result.stoppedBy}, loss ${result.loss.toFixed(5)}`,
          ...result.bins.map((b) => `  ${`${b.lengths[0]}-${b.lengths[1]}`.padEnd(8)} accuracy ${b.accuracy.toFixed(4)} (${b.samples} samples)`),
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
      } finally {
        bar?.stop();
        dispose();
      }
    });
}
