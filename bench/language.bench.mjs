// Language server speed, measured end to end against the built server (out/server.cjs) over stdio:
//   validate: a generated 2,000-line program, from didOpen/didChange to publishDiagnostics (target < 300 ms);
//   hover:    hover requests on statements of that program, no heatmaps (target < 30 ms).
// Prints one table. Run `npm run build` first.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadavg, tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import rpc from 'vscode-languageserver-protocol/node';

const { createProtocolConnection, StreamMessageReader, StreamMessageWriter } = rpc;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const server = join(root, 'out', 'server.cjs');
if (!existsSync(server)) {
  console.error('bench/language: out/server.cjs is missing; run `npm run build` first');
  process.exit(1);
}

/** A program of `lines` lines: blocks of select / aggregate / harden / project with provenance annotations. */
function generate(lines, variant) {
  const out = ['program "bench"', 'vocab [a, b, c, d, <bos>, <sep>, <eos>, <pad>]', 'positions 160', 'output softmax', 'd_head 16', ''];
  const logits = [];
  let i = 0;
  while (out.length + 4 < lines) {
    out.push(`s${i} = select(q=pos, k=pos, op=(k==q-${1 + ((i + variant) % 3)}))\t# layer 0 head ${i % 4} q=wpe k=wpe`);
    out.push(`a${i} = aggregate(s=s${i}, v=token) \t  # layer 0 head ${i % 4} v=wte`);
    out.push(`h${i} = harden(a${i}) \t  # layer 1 mlp input=attn_output-0-${i % 4}-wte neurons=${i % 64}:0.5`);
    out.push(`l${i} = project(inp=h${i}, op=(inp==out))`);
    logits.push(`l${i}`);
    i++;
  }
  out.push(`prediction = softmax(${logits.join('+')})`);
  return out.join('\n');
}

/** CPU ms (user + system) the server process has used: robust to other processes competing for the cores. */
function serverCpuMs(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p95 = (xs) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.95))];

const proc = spawn(process.execPath, [server, '--stdio'], { stdio: ['pipe', 'pipe', 'inherit'] });
const conn = createProtocolConnection(new StreamMessageReader(proc.stdout), new StreamMessageWriter(proc.stdin));
let onDiagnostics;
conn.onNotification('textDocument/publishDiagnostics', (p) => onDiagnostics?.(p));
conn.listen();
await conn.sendRequest('initialize', { processId: process.pid, rootUri: pathToFileURL(tmpdir()).toString(), capabilities: {} });
await conn.sendNotification('initialized', {});

const uri = pathToFileURL(join(tmpdir(), 'rasp-bench.rasp')).toString();
const waitDiagnostics = () => new Promise((resolve) => (onDiagnostics = resolve));
const validateTimes = [];
const validateCpu = [];
let lineCount = 0;
let errors = 0;
for (let v = 1; v <= 7; v++) {
  const text = generate(2000, v);
  lineCount = text.split('\n').length;
  const done = waitDiagnostics();
  const c0 = serverCpuMs(proc.pid);
  const t0 = performance.now();
  if (v === 1) await conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'rasp', version: v, text } });
  else await conn.sendNotification('textDocument/didChange', { textDocument: { uri, version: v }, contentChanges: [{ text }] });
  const diags = await done;
  errors = diags.diagnostics.filter((d) => d.severity === 1).length;
  // The first run includes the server's warm-up (parser tables, JIT); report it apart.
  validateTimes.push(performance.now() - t0);
  validateCpu.push(serverCpuMs(proc.pid) - c0);
}

const hoverTimes = [];
const h0 = serverCpuMs(proc.pid);
for (let h = 0; h < 300; h++) {
  const line = 6 + ((h * 37) % (lineCount - 8));
  const t0 = performance.now();
  const res = await conn.sendRequest('textDocument/hover', { textDocument: { uri }, position: { line, character: 1 } });
  hoverTimes.push(performance.now() - t0);
  if (!res) throw new Error(`no hover on line ${line}`);
}

const hoverCpu = (serverCpuMs(proc.pid) - h0) / hoverTimes.length;
await conn.sendRequest('shutdown');
await conn.sendNotification('exit');
conn.dispose();
proc.kill();

const warm = validateTimes.slice(1);
const warmCpu = validateCpu.slice(1);
const rows = [
  ['validate 2,000 lines (first, cold)', `${lineCount} lines, ${errors} errors`, validateTimes[0].toFixed(1), '-', validateCpu[0].toFixed(0), '-'],
  ['validate 2,000 lines (edit, warm)', `${warm.length} runs`, median(warm).toFixed(1), p95(warm).toFixed(1), median(warmCpu).toFixed(0), '< 300 ms'],
  ['hover on a statement', `${hoverTimes.length} requests`, median(hoverTimes).toFixed(2), p95(hoverTimes).toFixed(2), hoverCpu.toFixed(2), '< 30 ms'],
];
const head = ['measure', 'size', 'median ms', 'p95 ms', 'server cpu ms', 'target'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const fmt = (r) => r.map((c, i) => c.padEnd(widths[i])).join('  ');
console.log('language server (end to end over stdio, out/server.cjs)');
console.log(fmt(head));
console.log(fmt(widths.map((w) => '-'.repeat(w))));
for (const r of rows) console.log(fmt(r));
console.log(`load average ${loadavg().map((x) => x.toFixed(1)).join(' ')} on a shared machine: wall times include waiting for a core`);
