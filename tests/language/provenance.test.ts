// Provenance annotations: structured parse with column ranges, printing back, and paths in words.
import { describe, expect, it } from 'vitest';
import { describePath, formatAnnotation, parseAnnotation } from '../../server/src/program/provenance';

describe('provenance annotations', () => {
  it('parse the paper short forms', () => {
    expect(parseAnnotation('# layer 0 head 0').provenance).toEqual({ layer: 0, head: 0, mlp: false, paths: {} });
    expect(parseAnnotation('#  layer 2 mlp').provenance).toEqual({ layer: 2, head: null, mlp: true, paths: {} });
  });

  it('parse fields with the column of each part', () => {
    const text = '# layer 1 head 3 q=wte k=attn_output-0-0-wpe dims=0,5';
    const p = parseAnnotation(text);
    expect(p.problems).toEqual([]);
    expect(p.provenance).toEqual({ layer: 1, head: 3, mlp: false, paths: { q: 'wte', k: 'attn_output-0-0-wpe' }, dims: [0, 5] });
    const path = p.parts.find((x) => x.role === 'path' && text.slice(x.start, x.end).startsWith('attn'))!;
    expect(text.slice(path.start, path.end)).toBe('attn_output-0-0-wpe');
    const dims = p.parts.filter((x) => x.role === 'number').map((x) => text.slice(x.start, x.end));
    expect(dims).toEqual(['1', '3', '0', '5']);
  });

  it('report malformed fields at their columns', () => {
    const text = '# layer 0 mlp neurons=4:0.5,x7 colour=red';
    const p = parseAnnotation(text);
    expect(p.provenance?.neurons).toEqual([{ index: 4, score: 0.5 }]);
    expect(p.problems.map((q) => [q.message.split(' (')[0], text.slice(q.start, q.end)])).toEqual([
      ["invalid neuron 'x7'", 'x7'],
      ["unknown annotation field 'colour'", 'colour'],
    ]);
    expect(parseAnnotation('# layer 0 mlp q=wte').problems[0].message).toMatch(/belong to head annotations/);
  });

  it('print back to the same record', () => {
    for (const text of ['# layer 0 head 0', '# layer 3 mlp input=mlp-1-wte neurons=12:0.41,7', '# layer 1 head 2 q=wte k=wpe v=attn_output-0-1-wte dims=3', '# layer 2 logits']) {
      const p = parseAnnotation(text).provenance!;
      expect(formatAnnotation(p)).toBe(text);
      expect(parseAnnotation(formatAnnotation(p)).provenance).toEqual(p);
    }
  });

  it('describe paths in words, read right to left', () => {
    expect(describePath('wte')).toBe('token');
    expect(describePath('attn_output-0-0-wte')).toBe('token via layer 0 head 0');
    expect(describePath('attn_output-1-0-attn_output-0-0-wte')).toBe('token via layer 0 head 0, then layer 1 head 0');
    expect(describePath('mlp-1-attn_output-0-2-wpe')).toBe('position via layer 0 head 2, then layer 1 MLP');
  });
});
