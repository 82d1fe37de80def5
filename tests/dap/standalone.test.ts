// The separate-process adapter: bundles client/src/debug/standalone.ts (as esbuild.mjs does for
// out/debugAdapter.cjs) into a temp folder, spawns it with Node and drives it over stdin/stdout.
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DebugClient } from '@vscode/debugadapter-testsupport';
import { writeFixture } from '../fixtures/models';
import { fixture } from './harness';

let dir: string;
let adapter: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rasp-dap-bundle-'));
  adapter = join(dir, 'debugAdapter.cjs');
  await build({
    entryPoints: [resolve('client/src/debug/standalone.ts')],
    outfile: adapter,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['vscode'],
    define: { 'import.meta.url': 'importMetaUrl' },
    banner: { js: "const importMetaUrl = require('url').pathToFileURL(__filename).href;" },
    logLevel: 'silent',
  });
  // As esbuild.mjs does: the tfjs wasm binaries sit next to the bundle, where the model backend looks first.
  const wasmDist = join(dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  for (const f of await readdir(wasmDist)) if (f.endsWith('.wasm')) await copyFile(join(wasmDist, f), join(dir, f));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

it('runs as its own process over stdio: stops on entry, steps, and ends with the prediction', async () => {
  const dc = new DebugClient(process.execPath, adapter, 'rasp');
  dc.defaultTimeout = 30_000;
  await dc.start();
  try {
    const program = fixture('previous.rasp');
    await Promise.all([
      dc.waitForEvent('initialized').then(() => dc.configurationDoneRequest()),
      dc.launch({ program, input: '<bos> b a', stopOnEntry: true }),
      dc.assertStoppedLocation('entry', { path: program, line: 8 }),
    ]);
    const threads = await dc.threadsRequest();
    expect(threads.body.threads.map((t) => t.name)).toEqual(['previous token']);
    await Promise.all([dc.nextRequest({ threadId: 1 }), dc.assertStoppedLocation('step', { line: 9 })]);
    await Promise.all([
      dc.continueRequest({ threadId: 1 }),
      dc.assertOutput('stdout', 'prediction: <bos> <bos> b\n'),
      dc.waitForEvent('terminated'),
    ]);
  } finally {
    await dc.stop();
  }
});

it('shows the Model scope from the separate process (tfjs wasm next to the bundle)', async () => {
  const model = await writeFixture({ layers: 1, heads: 2, width: 8, symbols: ['a', 'b', 'c'], positions: 16 });
  const dc = new DebugClient(process.execPath, adapter, 'rasp');
  dc.defaultTimeout = 60_000;
  await dc.start();
  try {
    const program = fixture('previous.rasp');
    await Promise.all([
      dc
        .waitForEvent('initialized')
        .then(() => dc.setBreakpointsRequest({ source: { path: program }, breakpoints: [{ line: 11 }] }))
        .then(() => dc.configurationDoneRequest()),
      dc.launch({ program, model, input: '<bos> a b' }),
      dc.assertStoppedLocation('breakpoint', { line: 11 }),
    ]);
    const scopes = await dc.scopesRequest({ frameId: 1 });
    const scope = scopes.body.scopes.find((s) => s.name === 'Model');
    expect(scope).toBeDefined();
    const vars = (await dc.variablesRequest({ variablesReference: scope!.variablesReference })).body.variables;
    expect(vars.map((v) => v.name.replace(' ≠', ''))).toEqual(['layer 0 head 0 (a1)', 'prediction (model)']);
    // A random model's head 0 is not a previous-token head: its rows sum to 1 but differ from the program's.
    const rows = (await dc.variablesRequest({ variablesReference: vars[0].variablesReference })).body.variables;
    const keys = (await dc.variablesRequest({ variablesReference: rows[2].variablesReference })).body.variables;
    const modelWeights = keys.map((k) => Number(/^model (\S+),/.exec(k.value)![1]));
    expect(modelWeights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 3);
  } finally {
    await dc.stop();
    await rm(dirname(model), { recursive: true, force: true });
  }
});
