// `rasp simplify <file.rasp> --model DIR`: the primitives stage of `rasp extract` on its own (docs/primitives.md):
// named primitives, rounding, MLP matching and merging on an existing program (one written by
// `rasp extract --no-primitives`, or a hand-written hypothesis), judged against the model's decisions with the same
// screening and confirmation sets `rasp extract` uses. Writes the simplified program atomically.
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import { taskFor } from '../../check';
import { primitivesStage } from '../../decompile/primitives';
import { loadProgramFile } from '../../language/load';
import { initBackend } from '../../model/backend';
import { loadModel } from '../../model/load';
import { writeProgramFiles } from '../../program/print';
import { DEFAULT_BINS } from '../../tasks';
import { UserError } from '../../util/errors';
import { cancelOnSigint, intOption } from './train';

interface SimplifyCliOptions {
  model: string;
  task?: string;
  out?: string;
  target: string;
  seed: string;
  screenSamples: string;
  checkSamples: string;
  force?: boolean;
  json?: boolean;
}

/** `<name>.simple.rasp` next to the input. */
function defaultOut(file: string): string {
  return join(dirname(file), `${basename(file).replace(/\.rasp$/, '')}.simple.rasp`);
}

export function registerSimplify(program: Command): void {
  program
    .command('simplify')
    .description("Run the primitives stage of `rasp extract` on a program: named primitives, rounding, MLP matching, merging (judged against the model)")
    .argument('<file.rasp>', 'the program (e.g. written by `rasp extract --no-primitives`)')
    .requiredOption('--model <dir>', 'model folder the program describes')
    .option('--task <name>', 'task, when neither the program nor the model card names one')
    .option('--out <file.rasp>', 'output program (default: <file>.simple.rasp)')
    .option('--target <match>', 'match accuracy the simplified program must keep on the check set', '0.9')
    .option('--seed <n>', 'seed of the screening and check sets (as `rasp extract --seed`)', '0')
    .option('--screen-samples <n>', 'screening sequences per length bin (rasp extract: 4 x its search samples = 96)', '96')
    .option('--check-samples <n>', 'check-set sequences per length bin the winners are confirmed on', '200')
    .option('--force', 'overwrite the output file')
    .option('--json', 'print {"out", "lines", "linesBefore", "match", "seconds", "stats"} on stdout')
    .action(async (file: string, opts: SimplifyCliOptions) => {
      const targetText = opts.target;
      const target = Number(targetText);
      if (targetText.trim() === '' || !Number.isFinite(target) || target < 0 || target > 1) {
        throw new UserError(`--target must be a number from 0 to 1, got "${targetText}"`);
      }
      const seed = intOption('seed', opts.seed, 0, 2 ** 31 - 1);
      const screenPerBin = intOption('screen-samples', opts.screenSamples, 1, 100_000);
      const checkSamples = intOption('check-samples', opts.checkSamples, 1, 100_000);
      const out = opts.out ?? defaultOut(file);
      // Refuse before the (long) work, and again when writing (writeProgramFiles checks the sidecar too).
      if (!opts.force && existsSync(out)) throw new UserError('already exists (use --force to overwrite)', out);
      const t0 = Date.now();
      const input = await loadProgramFile(file);
      const model = await loadModel(opts.model, opts.task ? { task: opts.task } : {});
      const task = taskFor(input, model, opts.task);
      await initBackend();
      // The check set `rasp extract` confirms on and reports: its bins clipped to the task's lengths, seed + 1000.
      const bins = DEFAULT_BINS.filter(([lo, hi]) => hi >= task.minLength && lo <= task.maxLength).map(
        ([lo, hi]): [number, number] => [Math.max(lo, task.minLength), Math.min(hi, task.maxLength)],
      );
      const { signal, dispose } = cancelOnSigint();
      let lastStage = '';
      let lastLog = 0;
      try {
        const r = await primitivesStage(input, model, task, {
          target,
          seed,
          checkBins: bins,
          checkSamples,
          checkSeed: seed + 1000,
          screenPerBin,
          signal,
          onProgress: (p) => {
            if (p.stage === lastStage && Date.now() - lastLog < 5000) return;
            lastStage = p.stage;
            lastLog = Date.now();
            process.stderr.write(`rasp: ${p.stage} ${Math.round(p.fraction * 100)}%${p.message ? ` ${p.message}` : ''}\n`);
          },
        });
        // The sidecar is named after the output, never after the input's (which would overwrite the input's weights).
        const { weights: _inputSidecar, ...header } = r.program.header;
        await writeProgramFiles({ ...r.program, header }, out, { force: opts.force === true });
        const seconds = (Date.now() - t0) / 1000;
        const match = r.stats.confirmed ?? r.stats.match;
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ out, lines: r.stats.lines, linesBefore: r.stats.linesBefore, match, seconds, stats: r.stats })}\n`);
          return;
        }
        const lines = [
          `program   ${out} (${r.stats.linesBefore} -> ${r.stats.lines} lines: ${r.stats.primitives} primitives, ${r.stats.rounded} rounded, ${r.stats.opaque} opaque)`,
          `match     ${match.toFixed(4)} (${r.stats.confirmed !== undefined ? 'check set' : 'screening set'}; screening ${r.stats.baseline.toFixed(4)} -> ${r.stats.match.toFixed(4)})`,
          ...(r.stats.skipped ? [`skipped   ${r.stats.skipped}`] : []),
          `steps     ${r.steps.length} accepted, ${r.stats.evaluations} screening runs`,
          `time      ${seconds.toFixed(1)} s`,
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
      } finally {
        dispose();
      }
    });
}
