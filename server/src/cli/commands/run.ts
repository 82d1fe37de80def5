// PLACEHOLDER: the owner of `rasp run` replaces this file.
import type { Command } from 'commander';

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('(not built yet)')
    .action(() => {
      throw new Error('rasp run is not built yet');
    });
}
