// The program's source map: one record per statement (line -> model components), shared by `rasp info --json`
// and the language server's `rasp/programInfo` request.
import type { NeuronRef, Program, ProgramHeader, Statement } from './types';

export interface SourceMapRecord {
  line: number;
  name: string;
  kind: Statement['kind'];
  layer: number | null;
  head: number | null;
  mlp: boolean;
  paths: { q: string | null; k: string | null; v: string | null; input: string | null };
  neurons: NeuronRef[];
  dims: number[];
  /** Per entry of `dims`, its score (present only when the annotation gives scores). */
  dimScores?: number[];
  /** Kept dims not listed in the annotation (`+N`). */
  dimsMore?: number;
}

export function sourceMap(program: Program): SourceMapRecord[] {
  return program.statements.map((s) => {
    const p = s.provenance;
    return {
      line: s.line,
      name: s.name,
      kind: s.kind,
      layer: p?.layer ?? null,
      head: p?.head ?? null,
      mlp: p?.mlp ?? false,
      paths: { q: p?.paths.q ?? null, k: p?.paths.k ?? null, v: p?.paths.v ?? null, input: p?.paths.input ?? null },
      neurons: p?.neurons ?? [],
      dims: p?.dims ?? [],
      ...(p?.dimScores ? { dimScores: p.dimScores } : {}),
      ...(p?.dimsMore ? { dimsMore: p.dimsMore } : {}),
    };
  });
}

/** The header as plain JSON (optional fields left out when absent). */
export function headerJson(header: ProgramHeader): Record<string, unknown> {
  return { ...header };
}
