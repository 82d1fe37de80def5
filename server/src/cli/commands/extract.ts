// `rasp extract --model DIR`: decompile a model into a pruned D-RASP program (plus the faithful unpruned program
// and a JSON report). Progress per stage on stderr; Ctrl-C cancels and writes nothing.
import { MultiBar, type SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { extract, type ExtractOptions, type LongPool, type MlpMode } from '../../decompile';
import { UserError } from '../../util/errors';
import { cancelOnSigint, intOption } from './train';

interface ExtractCliOptions {
  model: string;
  task?: string;
  out?: string;
  target: string;
  seed: string;
  force?: boolean;
  budget?: string;
  json?: boolean;
  runs: string;
  pruneLength: string;
  checkSamples: string;
  steps?: string;
  stages: string;
  mlp: string;
  mlpSteps: string;
  calibrateSteps: string;
  longPool: string;
  /** false with --no-primitives */
  primitives: boolean;
  /** false with --no-parallel */
  parallel: boolean;
}

function numberIn(name: string, text: string, lo: number, hi: number): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v < lo || v > hi) throw new UserError(`--${name} must be a number from ${lo} to ${hi}, got "${text}"`);
  return v;
}

function parseSteps(text: string | undefined): Pick<ExtractOptions, 'stage1Steps' | 'stage2Steps' | 'faithfulSteps' | 'stage3Steps'> {
  if (text === undefined) return {};
  const parts = text.split(',');
  if (parts.length < 2 || parts.length > 4) throw new UserError(`--steps must be "stage1,stage2[,faithful[,stage3]]", got "${text}"`);
  const [a, b, c, d] = parts.map((p, i) => intOption(`steps (part ${i + 1})`, p, 1, 100_000));
  return { stage1Steps: a, stage2Steps: b, ...(c !== undefined ? { faithfulSteps: c } : {}), ...(d !== undefined ? { stage3Steps: d } : {}) };
}

function mlpMode(text: string): MlpMode {
  if (text !== 'split' && text !== 'unsplit' && text !== 'auto') throw new UserError(`--mlp must be "auto", "split" or "unsplit", got "${text}"`);
  return text;
}

export function registerExtract(program: Command): void {
  program
    .command('extract')
    .description('Decompile a trained GPT-2 into a short executable RASP program (LLN-A, causal pruning, lambda search)')
    .requiredOption('--model <dir>', 'model folder (config.json + model.safetensors [+ rasp-model.json])')
    .option('--task <name>', 'task, when the folder has no model card and its name does not say')
    .option('--out <file.rasp>', 'output program (default: <model folder name>.rasp); also writes <out>.unpruned.rasp and <out>.report.json')
    .option('--target <match>', 'match accuracy the pruned program must keep', '0.9')
    .option('--seed <n>', 'seed for data and mask sampling (same seed, same program)', '0')
    .option('--runs <n>', 'pruning runs in the sparsity search', '4')
    .option('--prune-length <tokens>', 'longest sequence pruning trains on (match is always measured on lengths 0-150)', '40')
    .option('--check-samples <n>', 'sequences per length bin for the final check', '200')
    .option('--steps <s1,s2[,faithful[,s3]]>', 'step caps per run for stage 1 and stage 2 (and the LN-variance fit, and stage 3), default 500,300,100,300')
    .option('--stages <2|3>', 'pruning stages: 3 adds query-key product masks after components and paths', '3')
    .option(
      '--mlp <auto|split|unsplit>',
      'split: one MLP copy per input path, started from the MLP and fine-tuned (readable, the MLP lines can become named primitives); unsplit: one exact MLP per layer; auto: split on models up to width 64 unless the copies fall more than 0.1 short of the target, else unsplit',
      'auto',
    )
    .option('--mlp-steps <n>', 'MLP training steps: the fine-tune when learned LN variances miss the target (0: never), and the split copies\' pre-training', '150')
    .option('--long-pool <mode>', 'when the LN variances need lengths 0-150: prune on them (prune), prune short with them held and calibrate runs on 0-150 (calibrate), or calibrate on models wider than 64 only (auto)', 'auto')
    .option('--calibrate-steps <n>', 'steps a pruned run that misses the target re-fits its LN variances and constants on lengths 0-150, mask fixed (0: never)', '60')
    .option('--no-primitives', 'keep the pruned op matrices and opaque MLPs (skip named primitives, rounding, MLP matching)')
    .option('--no-parallel', 'one lambda run at a time on one core (default: two at once, the second in a worker thread)')
    .option('--budget <seconds>', 'time the whole extract aims at (default by model size: 180 s for 1 layer up to width 64, 600 s for more layers, 900 s wider); the primitives stage stops trying candidates when a tenth is left')
    .option('--force', 'overwrite existing output files')
    .option('--json', 'print {"out", "lines", "unprunedLines", "edges", "match", "seconds"} on stdout')
    .action(async (opts: ExtractCliOptions) => {
      const options: ExtractOptions = {
        model: opts.model,
        target: numberIn('target', opts.target, 0, 1),
        ...(opts.budget !== undefined ? { budget: numberIn('budget', opts.budget, 1, 1e7) } : {}),
        seed: intOption('seed', opts.seed, 0, 2 ** 31 - 1),
        runs: intOption('runs', opts.runs, 1, 50),
        pruneLength: intOption('prune-length', opts.pruneLength, 2, 10_000),
        checkSamples: intOption('check-samples', opts.checkSamples, 1, 100_000),
        force: opts.force === true,
        primitives: opts.primitives !== false,
        parallel: opts.parallel !== false,
        stages: intOption('stages', opts.stages, 2, 3) as 2 | 3,
        ...parseSteps(opts.steps),
        mlp: mlpMode(opts.mlp),
        mlpSteps: intOption('mlp-steps', opts.mlpSteps, 0, 100_000),
        calibrateSteps: intOption('calibrate-steps', opts.calibrateSteps, 0, 100_000),
        longPool: opts.longPool as LongPool,
        ...(opts.task ? { task: opts.task } : {}),
        ...(opts.out ? { out: opts.out } : {}),
      };
      const { signal, dispose } = cancelOnSigint();
      const tty = process.stderr.isTTY;
      const bars = tty ? new MultiBar({ stream: process.stderr, format: '{stage} {bar} {percentage}% {message}', hideCursor: true, clearOnComplete: false }) : undefined;
      // one bar per stage: the search runs two lambda runs at once, so their stages' updates interleave
      const stageBars = new Map<string, SingleBar>();
      let current = '';
      let lastLog = 0;
      const onProgress = (p: { stage: string; fraction: number; message?: string }): void => {
        if (bars) {
          let bar = stageBars.get(p.stage);
          if (!bar) {
            bar = bars.create(100, 0, { stage: p.stage.padEnd(48), message: '' });
            stageBars.set(p.stage, bar);
          }
          bar.update(Math.round(p.fraction * 100), { message: p.message ?? '' });
        } else if (p.stage !== current || Date.now() - lastLog > 5000) {
          // non-interactive stderr: one line per stage change and at most one every 5 s
          current = p.stage;
          lastLog = Date.now();
          process.stderr.write(`rasp: ${p.stage} ${Math.round(p.fraction * 100)}%${p.message ? ` ${p.message}` : ''}\n`);
        }
      };
      try {
        const r = await extract(options, { signal, onProgress });
        for (const b of stageBars.values()) b.update(100);
        bars?.stop();
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ out: r.out, lines: r.lines, unprunedLines: r.unprunedLines, edges: r.edges, match: r.match, seconds: r.seconds })}\n`);
        } else {
          const lines = [
            r.out ? `program   ${r.out} (${r.lines} lines, ${r.edges} edges, match ${r.match.toFixed(3)})` : 'program   none: not decompilable at the target',
            `faithful  ${r.unprunedOut} (${r.unprunedLines} lines)`,
            `report    ${r.reportOut}`,
            `time      ${r.seconds.toFixed(1)} s`,
          ];
          process.stdout.write(`${lines.join('\n')}\n`);
        }
        if (!r.report.decompilable) {
          throw new UserError(
            `not decompilable at the target ${options.target}: the faithful program (${r.report.llnA.faithfulFit}) misses it and no pruned run reached it either (best short by ${(r.report.shortfall ?? 0).toFixed(3)}); see ${r.reportOut}`,
          );
        }
      } finally {
        bars?.stop();
        dispose();
      }
    });
}
