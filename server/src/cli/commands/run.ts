// `rasp run FILE.rasp --input "<bos> a b" [--json]`: executes a program on one input and prints every variable's
// per-position values (their largest entries) and the per-position prediction.
import type { Command } from 'commander';
import { loadProgramFile } from '../../language/load';
import { Execution, type RunResult } from '../../interpreter/index';
import { formatPosition, isScalarBasis, tidy, topEntries } from '../../interpreter/summary';
import { UserError } from '../../util/errors';

interface RunOptions {
  input?: string;
  json?: boolean;
  top: string;
}

function parseTop(text: string): number {
  const top = Number(text);
  if (!Number.isInteger(top) || top < 1) throw new UserError(`--top must be a positive integer, got '${text}'`);
  return top;
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('Run a .rasp program on one input and print its variables and prediction')
    .argument('<file>', 'the .rasp program')
    .option('--input <tokens>', 'the whole input, space-separated tokens as the model sees them (e.g. "<bos> 1 0 <sep>"); default: the header\'s example')
    .option('--json', 'print one JSON document {"prediction": [...], "variables": {...}}')
    .option('--top <k>', 'entries shown per position', '3')
    .action(async (file: string, options: RunOptions) => {
      const top = parseTop(options.top);
      const prog = await loadProgramFile(file);
      const input = options.input ?? prog.header.example;
      if (input === undefined) {
        throw new UserError('no --input given and the program header has no example', file);
      }
      const exec = new Execution(prog, input);
      const result = exec.runToEnd();
      // Variables the program computed; token/pos are the input itself and the prediction is printed apart.
      const names = exec.variables().filter((n) => n !== 'token' && n !== 'pos' && n !== 'prediction');
      if (options.json) {
        const variables: Record<string, unknown> = {};
        for (const name of names) {
          const v = exec.value(name);
          if (!v) continue;
          const values = Array.from({ length: v.n }, (_, i) =>
            isScalarBasis(v.basis) ? tidy(v.data[i]) : Object.fromEntries(topEntries(v, i, top).map((e) => [e.label, e.value])),
          );
          variables[name] = { basis: v.basis.kind, size: v.basis.size, values };
        }
        process.stdout.write(`${JSON.stringify({ prediction: result.prediction, variables })}\n`);
        return;
      }
      process.stdout.write(formatText(exec, names, result, top));
    });
}

function formatText(exec: Execution, names: string[], result: RunResult, top: number): string {
  const tokens = result.tokens;
  const posWidth = String(tokens.length - 1).length;
  const tokWidth = Math.max(...tokens.map((t) => t.length));
  const rowHead = (i: number): string => `  ${String(i).padStart(posWidth)} ${tokens[i].padEnd(tokWidth)}  `;
  const lines: string[] = [];
  for (const name of names) {
    const v = exec.value(name);
    if (!v) continue;
    lines.push(`${name}  (${v.basis.kind}, ${v.basis.size})`);
    for (let i = 0; i < v.n; i++) lines.push(rowHead(i) + formatPosition(v, i, top));
  }
  lines.push('prediction');
  result.prediction.forEach((p, i) => {
    lines.push(rowHead(i) + (Array.isArray(p) ? `{${p.join(' ')}}` : p));
  });
  return `${lines.join('\n')}\n`;
}
