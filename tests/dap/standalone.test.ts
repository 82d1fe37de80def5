// The separate-process adapter: bundles client/src/debug/standalone.ts (as esbuild.mjs does for
// out/debugAdapter.cjs) into a temp folder, spawns it with Node and drives it over stdin/stdout.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DebugClient } from '@vscode/debugadapter-testsupport';
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
