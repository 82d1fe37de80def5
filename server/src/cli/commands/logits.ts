// PLACEHOLDER: the owner of `rasp logits` replaces this file.
import type { Command } from 'commander';

export function registerLogits(program: Command): void {
  program
    .command('logits')
    .description('(not built yet)')
    .action(() => {
      throw new Error('rasp logits is not built yet');
    });
}
