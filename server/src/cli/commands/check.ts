// `rasp check <file.rasp> --model DIR`: match accuracy of a program (extracted or hand-written) against a model's
// decisions, per length bin, on fresh task inputs. The program runs through the interpreter.
import type { Command } from 'commander';
import { checkProgram } from '../../check';
import { loadProgramFile } from '../../language/load';
import { initBackend } from '../../model/backend';
import { loadModel } from '../../model/load';
import { DEFAULT_BINS, parseLengthBins } from '../../tasks';
import { cancelOnSigint, intOption } from './train';

interface CheckCliOptions {
  model: string;
  task?: string;
  lengths?: string;
  samples: string;
  seed: string;
  json?: boolean;
}

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description("Match accuracy of a program against a model's decisions per length bin (program run by the interpreter)")
    .argument('<file.rasp>', 'the program')
    .requiredOption('--model <dir>', 'model folder')
    .option('--task <name>', 'task, when neither the program nor the model card names one')
    .option('--lengths <bins>', 'length bins, e.g. 0-50,51-100,101-150 (the default)')
    .option('--samples <n>', 'sequences per bin', '200')
    .option('--seed <n>', 'sampling seed', '0')
    .option(
      '--json',
      'print {"bins": [{"lengths": [lo, hi], "match": m, "samples": n}, ...], "match": m, "firstDisagreement": {"sequence", "position", "statement": {"line", "name"}, "reason"} | null} on stdout',
    )
    .action(async (file: string, opts: CheckCliOptions) => {
      const bins = opts.lengths ? parseLengthBins(opts.lengths) : DEFAULT_BINS;
      const samples = intOption('samples', opts.samples, 1, 1_000_000);
      const seed = intOption('seed', opts.seed, 0, 2 ** 31 - 1);
      const prog = await loadProgramFile(file);
      const model = await loadModel(opts.model, opts.task ? { task: opts.task } : {});
      await initBackend();
      const { signal, dispose } = cancelOnSigint();
      try {
        const r = await checkProgram(prog, model, { lengths: bins, samples, seed, signal, locate: true, ...(opts.task ? { task: opts.task } : {}) });
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ bins: r.bins, match: r.match, firstDisagreement: r.firstDisagreement ?? null })}\n`);
          return;
        }
        const lines = ['lengths    match   samples'];
        for (const b of r.bins) lines.push(`${`${b.lengths[0]}-${b.lengths[1]}`.padEnd(10)} ${b.match.toFixed(4)}  ${String(b.samples).padStart(7)}`);
        lines.push(`all        ${r.match.toFixed(4)}`);
        for (const d of r.disagreements.slice(0, 3)) lines.push(`differs at position ${d.position}: ${d.input}`);
        const first = r.firstDisagreement;
        if (first) lines.push(`first disagreeing statement: line ${first.statement.line} (${first.statement.name}): ${first.reason}`);
        process.stdout.write(`${lines.join('\n')}\n`);
      } finally {
        dispose();
      }
    });
}
