// Provenance annotations: `# layer L head H [q=PATH] [k=PATH] [v=PATH] [dims=0:0.9,3]` and
// `# layer L mlp [input=PATH] [neurons=12:0.41,7]`. The paper's bare `# layer 0 head 0` / `# layer 0 mlp` comments
// are the short form. Parsed by hand (the lexer keeps the whole annotation as one token) with column offsets, so
// the language server can place diagnostics, hovers and semantic tokens on each field.
import type { NeuronRef, Provenance } from './types';

export interface AnnotationPart {
  /** What the part is: a keyword (`layer`, `head`, `mlp`, field names), a number, or a path value. */
  role: 'keyword' | 'number' | 'path';
  /** Column offsets inside the annotation text (end exclusive). */
  start: number;
  end: number;
}

export interface AnnotationProblem {
  message: string;
  start: number;
  end: number;
}

export interface ParsedAnnotation {
  provenance?: Provenance;
  parts: AnnotationPart[];
  problems: AnnotationProblem[];
}

const PATH_FIELDS = ['q', 'k', 'v', 'input'] as const;

interface Word {
  text: string;
  start: number;
  end: number;
}

function words(text: string): Word[] {
  const out: Word[] = [];
  const re = /\S+/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) out.push({ text: m[0], start: m.index, end: m.index + m[0].length });
  return out;
}

function parseNatural(text: string): number | undefined {
  return /^\d+$/.test(text) ? Number(text) : undefined;
}

/** Parses one annotation token text (starting with `#`). */
export function parseAnnotation(text: string): ParsedAnnotation {
  const parts: AnnotationPart[] = [];
  const problems: AnnotationProblem[] = [];
  const ws = words(text.slice(1)).map((w) => ({ ...w, start: w.start + 1, end: w.end + 1 }));
  const fail = (message: string, w: Word | undefined): ParsedAnnotation => {
    problems.push({ message, start: w?.start ?? 0, end: w?.end ?? text.length });
    return { parts, problems };
  };
  // ws[0] is `layer` (guaranteed by the token pattern).
  parts.push({ role: 'keyword', start: ws[0].start, end: ws[0].end });
  const layer = ws[1] ? parseNatural(ws[1].text) : undefined;
  if (layer === undefined) return fail('expected a layer number after `layer`', ws[1] ?? ws[0]);
  parts.push({ role: 'number', start: ws[1].start, end: ws[1].end });
  const kind = ws[2];
  let head: number | null = null;
  let mlp = false;
  let next = 3;
  if (kind?.text === 'head') {
    parts.push({ role: 'keyword', start: kind.start, end: kind.end });
    const h = ws[3] ? parseNatural(ws[3].text) : undefined;
    if (h === undefined) return fail('expected a head number after `head`', ws[3] ?? kind);
    parts.push({ role: 'number', start: ws[3].start, end: ws[3].end });
    head = h;
    next = 4;
  } else if (kind?.text === 'mlp') {
    parts.push({ role: 'keyword', start: kind.start, end: kind.end });
    mlp = true;
  } else if (kind?.text === 'logits' || kind === undefined) {
    // `# layer L` alone is accepted for completeness (a projection has neither head nor MLP).
    if (kind) parts.push({ role: 'keyword', start: kind.start, end: kind.end });
    next = kind ? 3 : 2;
  } else {
    return fail('expected `head N` or `mlp` after the layer number', kind);
  }
  const provenance: Provenance = { layer, head, mlp, paths: {} };
  for (const w of ws.slice(next)) {
    const eq = w.text.indexOf('=');
    if (eq <= 0) {
      problems.push({ message: `unexpected '${w.text}' in the annotation (fields are name=value)`, start: w.start, end: w.end });
      continue;
    }
    const field = w.text.slice(0, eq);
    const value = w.text.slice(eq + 1);
    const valueStart = w.start + eq + 1;
    parts.push({ role: 'keyword', start: w.start, end: w.start + eq });
    if ((PATH_FIELDS as readonly string[]).includes(field)) {
      if (!/^[A-Za-z0-9_\-.]+$/.test(value)) {
        problems.push({ message: `invalid path '${value}' for ${field}=`, start: valueStart, end: w.end });
        continue;
      }
      provenance.paths[field as (typeof PATH_FIELDS)[number]] = value;
      parts.push({ role: 'path', start: valueStart, end: w.end });
    } else if (field === 'neurons') {
      const neurons: NeuronRef[] = [];
      let offset = valueStart;
      for (const item of value.split(',')) {
        const m = /^(\d+)(?::(-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))?$/.exec(item);
        if (!m) {
          problems.push({ message: `invalid neuron '${item}' (expected INDEX or INDEX:SCORE)`, start: offset, end: offset + item.length });
        } else {
          neurons.push(m[2] !== undefined ? { index: Number(m[1]), score: Number(m[2]) } : { index: Number(m[1]) });
          parts.push({ role: 'number', start: offset, end: offset + item.length });
        }
        offset += item.length + 1;
      }
      provenance.neurons = neurons;
    } else if (field === 'dims') {
      // `dims=3,1` or with scores `dims=3:0.91,1:0.05` (all or none scored, so the two lists stay parallel); a last
      // item `+N` says N more dims are kept but not listed
      const dims: number[] = [];
      const scores: number[] = [];
      let offset = valueStart;
      const items = value.split(',');
      for (const [i, item] of items.entries()) {
        const m = /^(\d+)(?::(-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))?$/.exec(item);
        const more = /^\+(\d+)$/.exec(item);
        if (more && i === items.length - 1 && i > 0) {
          provenance.dimsMore = Number(more[1]);
          parts.push({ role: 'number', start: offset, end: offset + item.length });
        } else if (!m) {
          problems.push({ message: `invalid head dimension '${item}' (expected DIM or DIM:SCORE, or +N last)`, start: offset, end: offset + item.length });
        } else {
          dims.push(Number(m[1]));
          if (m[2] !== undefined) scores.push(Number(m[2]));
          parts.push({ role: 'number', start: offset, end: offset + item.length });
        }
        offset += item.length + 1;
      }
      provenance.dims = dims;
      if (scores.length === dims.length && scores.length > 0) provenance.dimScores = scores;
      else if (scores.length > 0) problems.push({ message: 'give a score for every head dimension or for none', start: valueStart, end: w.end });
    } else {
      problems.push({
        message: `unknown annotation field '${field}' (expected q, k, v, input, neurons or dims)`,
        start: w.start,
        end: w.start + eq,
      });
    }
  }
  if (mlp && (provenance.paths.q || provenance.paths.k || provenance.paths.v || provenance.dims)) {
    problems.push({ message: 'q=, k=, v= and dims= belong to head annotations, not mlp', start: 0, end: text.length });
  }
  if (!mlp && provenance.neurons) {
    problems.push({ message: 'neurons= belongs to mlp annotations', start: 0, end: text.length });
  }
  return { provenance, parts, problems };
}

/** The annotation text for a provenance record (inverse of parseAnnotation). */
export function formatAnnotation(p: Provenance): string {
  let s = `# layer ${p.layer}`;
  if (p.mlp) s += ' mlp';
  else if (p.head !== null) s += ` head ${p.head}`;
  else s += ' logits';
  for (const f of PATH_FIELDS) {
    const v = p.paths[f];
    if (v !== undefined) s += ` ${f}=${v}`;
  }
  if (p.neurons && p.neurons.length > 0) {
    s += ` neurons=${p.neurons.map((n) => (n.score !== undefined ? `${n.index}:${n.score}` : `${n.index}`)).join(',')}`;
  }
  if (p.dims && p.dims.length > 0) s += ` dims=${formatDims(p)}`;
  return s;
}

/** A `dims=` value: `3:0.91,1:0.05` (scores when every dim has one), then `+N` for the kept dims not listed. */
export function formatDims(p: Pick<Provenance, 'dims' | 'dimScores' | 'dimsMore'>): string {
  const dims = p.dims ?? [];
  const scores = p.dimScores && p.dimScores.length === dims.length ? p.dimScores : undefined;
  return dims.map((d, i) => (scores ? `${d}:${scores[i]}` : `${d}`)).join(',') + (p.dimsMore ? `,+${p.dimsMore}` : '');
}

/** A path in words, read right to left: `attn_output-1-0-wte` -> "token via layer 1 head 0". */
export function describePath(path: string): string {
  const steps: string[] = [];
  let rest = path;
  for (;;) {
    let m = /^attn_output-(\d+)-(\d+)-(.*)$/.exec(rest);
    if (m) {
      steps.push(`layer ${m[1]} head ${m[2]}`);
      rest = m[3];
      continue;
    }
    m = /^mlp-(\d+)-(.*)$/.exec(rest);
    if (m) {
      steps.push(`layer ${m[1]} MLP`);
      rest = m[2];
      continue;
    }
    m = /^mlp-(\d+)$/.exec(rest);
    if (m) {
      steps.push(`layer ${m[1]} MLP`);
      rest = '';
    }
    break;
  }
  const source = rest === 'wte' ? 'token' : rest === 'wpe' ? 'position' : rest === '' ? 'its inputs' : rest;
  // Steps were collected outermost first; the path is read from the source outwards.
  return steps.length === 0 ? source : `${source} via ${steps.reverse().join(', then ')}`;
}
