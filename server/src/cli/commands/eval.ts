// PLACEHOLDER: the owner of `rasp eval` replaces this file.
import type { Command } from 'commander';

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('(not built yet)')
    .action(() => {
      throw new Error('rasp eval is not built yet');
    });
}
