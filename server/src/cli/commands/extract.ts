// PLACEHOLDER: the owner of `rasp extract` replaces this file.
import type { Command } from 'commander';

export function registerExtract(program: Command): void {
  program
    .command('extract')
    .description('(not built yet)')
    .action(() => {
      throw new Error('rasp extract is not built yet');
    });
}
