// Human-sized views of variable values: the few largest entries of a position's vector, with basis labels.
// Used by `rasp run`, and available to inlay hints and the debugger's variables view.
import type { Basis } from '../program/types';
import type { VariableValue } from './index';

export interface Entry {
  label: string;
  value: number;
}

/** Rounds away float noise for display and JSON (6 significant digits; -0 becomes 0). */
export function tidy(v: number): number {
  const r = Number(v.toPrecision(6));
  return r === 0 ? 0 : r;
}

/**
 * The `top` most telling entries of position `i`: largest first, except in the residual basis (signed
 * activations) where the largest magnitudes are shown. Entries that are zero are left out.
 */
export function topEntries(value: VariableValue, i: number, top = 3): Entry[] {
  const { basis, data } = value;
  const size = basis.size;
  const off = i * size;
  const key = basis.kind === 'residual' ? (v: number) => Math.abs(v) : (v: number) => v;
  const order: number[] = [];
  for (let c = 0; c < size; c++) if (data[off + c] !== 0) order.push(c);
  order.sort((a, b) => key(data[off + b]) - key(data[off + a]) || a - b);
  return order.slice(0, top).map((c) => ({ label: basis.labels[c] ?? String(c), value: tidy(data[off + c]) }));
}

/** Numeric variables are one number per position; everything else a list of entries. */
export function isScalarBasis(basis: Basis): boolean {
  return basis.kind === 'numeric' && basis.size === 1;
}

/** `1 0.5, <bos> 0.5` (or the number itself for a numeric variable; `-` when every entry is 0). */
export function formatPosition(value: VariableValue, i: number, top = 3): string {
  if (isScalarBasis(value.basis)) return String(tidy(value.data[i]));
  const entries = topEntries(value, i, top);
  if (entries.length === 0) return '-';
  // A one-hot row reads best as just its label.
  if (entries.length === 1 && entries[0].value === 1) return entries[0].label;
  return entries.map((e) => `${e.label} ${e.value}`).join(', ');
}
