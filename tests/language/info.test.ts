// `rasp info` as a process: the source map as JSON and as a table, and exit codes on bad input.
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'rasp-info-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function rasp(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [join(root, 'bin', 'rasp.cjs'), ...args], { encoding: 'utf8', cwd: root });
}

describe('rasp info', () => {
  it('prints the header and one source-map record per statement as one JSON document', () => {
    const file = join(tmp, 'prov.rasp');
    writeFileSync(
      file,
      'vocab [a, b, <bos>]\npositions 8\ns1 = select(q=pos, k=pos, op=(k<q))\t# layer 1 head 2 q=wpe k=attn_output-0-0-wpe dims=1,4\na1 = aggregate(s=s1, v=token) \t  # layer 1 head 2 v=wte\nh = harden(a1) \t  # layer 1 mlp input=attn_output-1-2-wte neurons=30:0.9,2\nl = project(inp=h, op=(inp==out))\nprediction = softmax(l)\n',
    );
    const r = rasp('info', file, '--json');
    expect(r.status, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { header: { vocab: string[]; positions: number }; statements: Record<string, unknown>[] };
    expect(doc.header).toMatchObject({ vocab: ['a', 'b', '<bos>'], positions: 8, output: 'softmax' });
    expect(doc.statements).toEqual([
      { line: 3, name: 's1', kind: 'select', layer: 1, head: 2, mlp: false, paths: { q: 'wpe', k: 'attn_output-0-0-wpe', v: null, input: null }, neurons: [], dims: [1, 4] },
      { line: 4, name: 'a1', kind: 'aggregate', layer: 1, head: 2, mlp: false, paths: { q: null, k: null, v: 'wte', input: null }, neurons: [], dims: [] },
      { line: 5, name: 'h', kind: 'elementwise', layer: 1, head: null, mlp: true, paths: { q: null, k: null, v: null, input: 'attn_output-1-2-wte' }, neurons: [{ index: 30, score: 0.9 }, { index: 2 }], dims: [] },
      { line: 6, name: 'l', kind: 'project', layer: null, head: null, mlp: false, paths: { q: null, k: null, v: null, input: null }, neurons: [], dims: [] },
      { line: 7, name: 'prediction', kind: 'prediction', layer: null, head: null, mlp: false, paths: { q: null, k: null, v: null, input: null }, neurons: [], dims: [] },
    ]);
  });

  it('prints a readable table without --json', () => {
    const r = rasp('info', 'examples/induction.rasp');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/vocab\s+a b c d <bos> <sep> <eos> <pad> \(8\)/);
    expect(r.stdout).toMatch(/hardened_a1\s+elementwise\s+0\s+mlp/);
    expect(r.stdout).toMatch(/s2\s+select\s+1\s+head 0/);
  });

  it('shows head dims in the table (scores and the +N of dims not listed) and in the JSON', () => {
    const file = join(tmp, 'dims.rasp');
    writeFileSync(file, 'vocab [a, b, <bos>]\npositions 8\ns1 = select(q=pos, k=pos, op=(k<q))\t# layer 0 head 1 q=wpe k=wpe dims=1:0.7,4:0.2,+5\na1 = aggregate(s=s1, v=token)\nl = project(inp=a1, op=(inp==out))\nprediction = softmax(l)\n');
    const r = rasp('info', file);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^line\s+name\s+kind\s+layer\s+head\/mlp\s+paths\s+neurons\s+dims$/m);
    expect(r.stdout).toMatch(/s1\s+select\s+0\s+head 1\s+q=wpe k=wpe\s+-\s+1:0\.7,4:0\.2,\+5$/m);
    const j = JSON.parse(rasp('info', file, '--json').stdout) as { statements: { name: string; dims: number[]; dimScores?: number[]; dimsMore?: number }[] };
    expect(j.statements[0]).toMatchObject({ name: 's1', dims: [1, 4], dimScores: [0.7, 0.2], dimsMore: 5 });
    expect(j.statements[1].dimsMore).toBeUndefined();
  });

  it('exits 1 naming the file and position on errors, and on a missing file', () => {
    const bad = join(tmp, 'bad.rasp');
    writeFileSync(bad, 'vocab [a]\npositions 4\nl = project(inp=nope, op=(inp==out))\nprediction = softmax(l)\n');
    const r = rasp('info', bad, '--json');
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${bad}:3:17: 'nope' is not defined`);
    const missing = rasp('info', join(tmp, 'none.rasp'));
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/none\.rasp: cannot read the program/);
  });
});
