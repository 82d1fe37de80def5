// PLACEHOLDER: the owner of `rasp check` replaces this file.
import type { Command } from 'commander';

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('(not built yet)')
    .action(() => {
      throw new Error('rasp check is not built yet');
    });
}
