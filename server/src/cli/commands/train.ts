// PLACEHOLDER: the owner of `rasp train` replaces this file.
import type { Command } from 'commander';

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('(not built yet)')
    .action(() => {
      throw new Error('rasp train is not built yet');
    });
}
