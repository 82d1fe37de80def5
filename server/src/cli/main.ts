// `rasp` command line. Each command lives in commands/<name>.ts and registers itself here; commands are thin:
// parse options, call the engine, print. Exit codes: 0 success, 1 user error, 2 internal failure.
// With --json, stdout holds exactly one JSON document; progress and logs go to stderr.
import { Command } from 'commander';
import { CancelledError, UserError } from '../util/errors';
import { registerRun } from './commands/run';
import { registerInfo } from './commands/info';
import { registerLogits } from './commands/logits';
import { registerEval } from './commands/eval';
import { registerTrain } from './commands/train';
import { registerExtract } from './commands/extract';
import { registerCheck } from './commands/check';
import { registerSimplify } from './commands/simplify';

export function buildCli(): Command {
  const program = new Command('rasp')
    .description('Decompile Transformers into executable RASP programs; run, check and inspect them.')
    .showHelpAfterError()
    .exitOverride();
  for (const register of [registerRun, registerInfo, registerLogits, registerEval, registerTrain, registerExtract, registerCheck, registerSimplify]) {
    register(program);
  }
  return program;
}

async function main(argv: string[]): Promise<number> {
  const program = buildCli();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    const e = err as { code?: string; exitCode?: number };
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
      // help/version exit 0; usage errors are user errors
      return e.exitCode === 0 ? 0 : 1;
    }
    if (err instanceof UserError) {
      process.stderr.write(`rasp: ${err.message}\n`);
      return 1;
    }
    if (err instanceof CancelledError) {
      process.stderr.write('rasp: cancelled\n');
      return 1;
    }
    process.stderr.write(`rasp: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 2;
  }
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`rasp: internal error: ${String(err)}\n`);
    process.exitCode = 2;
  },
);
