// PLACEHOLDER: the owner of `rasp info` replaces this file.
import type { Command } from 'commander';

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('(not built yet)')
    .action(() => {
      throw new Error('rasp info is not built yet');
    });
}
