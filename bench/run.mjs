// Runs benchmarks: every bench/*.bench.{mjs,ts} (or those whose name contains one of the arguments), one process
// each, in order. TypeScript benches are bundled with esbuild into out/bench/ first (dependencies stay external,
// so they resolve from node_modules). Each bench prints its own table.
//   npm run bench              all benches
//   npm run bench -- model     only files whose name contains "model"
//   node bench/run.mjs bench/model-check.ts [args...]   runs one script (any name) with its arguments
import * as esbuild from 'esbuild';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const benchDir = join(root, 'bench');
const outDir = join(root, 'out', 'bench');
const argv = process.argv.slice(2);
// An explicit script path runs that script alone, passing it the remaining arguments.
const script = argv[0] && /\.(ts|mjs)$/.test(argv[0]) && existsSync(argv[0]) ? resolve(argv[0]) : undefined;
const filters = script ? [] : argv;
const scriptArgs = script ? argv.slice(1) : [];

const files = script ? [script] : readdirSync(benchDir)
  .filter((f) => /\.bench\.(mjs|ts)$/.test(f))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error(`no benchmarks match ${filters.join(', ') || '(none found)'} in bench/`);
  process.exit(1);
}

let failed = 0;
for (const f of files) {
  let entry = isAbsolute(f) ? f : join(benchDir, f);
  if (f.endsWith('.ts')) {
    mkdirSync(outDir, { recursive: true });
    const outfile = join(outDir, basename(f).replace(/\.ts$/, '.cjs'));
    await esbuild.build({
      entryPoints: [entry],
      outfile,
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      packages: 'external',
      define: { 'import.meta.url': 'importMetaUrl' },
      banner: { js: "const importMetaUrl = require('url').pathToFileURL(__filename).href;" },
      logLevel: 'warning',
    });
    entry = outfile;
  }
  console.log(`\n== ${basename(f)}`);
  const r = spawnSync(process.execPath, ['--expose-gc', entry, ...scriptArgs], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) {
    failed++;
    console.error(`${f} exited with ${r.status ?? r.signal}`);
  }
}
process.exit(failed > 0 ? 1 : 0);
