// `rasp info FILE.rasp [--json]`: the program's header and its source map (one record per statement: where in
// the model it came from). Text mode prints a table; --json prints {"header": {...}, "statements": [...]}.
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { formatDiagnostics, parseProgramSync } from '../../language/load';
import { sourceMap, type SourceMapRecord } from '../../program/sourcemap';
import { formatDims } from '../../program/provenance';
import type { ProgramHeader } from '../../program/types';
import { UserError } from '../../util/errors';

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description("Print a .rasp program's header and source map (statement -> layer, head or MLP, paths, neurons)")
    .argument('<file>', 'the .rasp program')
    .option('--json', 'print one JSON document {"header": {...}, "statements": [...]}')
    .action(async (file: string, options: { json?: boolean }) => {
      let text: string;
      try {
        text = await readFile(resolve(file), 'utf8');
      } catch (err) {
        throw new UserError(`cannot read the program: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, file);
      }
      // The source map needs no sidecar: weights are not read.
      const { program: prog, diagnostics } = parseProgramSync(text, resolve(file));
      if (!prog) throw new UserError(`the program has errors:\n${formatDiagnostics(file, diagnostics)}`);
      const statements = sourceMap(prog);
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ header: prog.header, statements })}\n`);
        return;
      }
      process.stdout.write(`${headerText(prog.header)}\n\n${table(statements)}\n`);
    });
}

function headerText(h: ProgramHeader): string {
  const rows: [string, string][] = [];
  if (h.name !== undefined) rows.push(['program', h.name]);
  rows.push(['vocab', `${h.vocab.join(' ')} (${h.vocab.length})`]);
  rows.push(['positions', String(h.positions)]);
  rows.push(['output', h.output]);
  if (h.dHead !== undefined) rows.push(['d_head', String(h.dHead)]);
  if (h.task !== undefined) rows.push(['task', h.task]);
  if (h.model !== undefined) rows.push(['model', `${h.model.path}${h.model.sha256 ? ` (sha256 ${h.model.sha256.slice(0, 12)}…)` : ''}`]);
  if (h.weights !== undefined) rows.push(['weights', h.weights]);
  if (h.example !== undefined) rows.push(['example', h.example]);
  const w = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}

function table(records: SourceMapRecord[]): string {
  const head = ['line', 'name', 'kind', 'layer', 'head/mlp', 'paths', 'neurons', 'dims'];
  const rows = records.map((r) => [
    String(r.line),
    r.name,
    r.kind,
    r.layer === null ? '-' : String(r.layer),
    r.mlp ? 'mlp' : r.head === null ? '-' : `head ${r.head}`,
    Object.entries(r.paths)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ') || '-',
    r.neurons.length > 0 ? r.neurons.map((n) => (n.score !== undefined ? `${n.index}:${n.score}` : String(n.index))).join(',') : '-',
    r.dims.length > 0 ? formatDims(r) : '-',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [fmt(head), fmt(widths.map((w) => '-'.repeat(w))), ...rows.map(fmt)].join('\n');
}
