// Bundles the CLI, the language server, the extension and the debug adapter into out/ (CommonJS, Node target),
// and copies the tfjs wasm binaries next to them so every bundle finds them at run time.
import * as esbuild from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const watch = process.argv.includes('--watch');

/** entry file -> bundle name in out/ */
const entries = {
  'server/src/cli/main.ts': 'cli',
  'server/src/lsp/main.ts': 'server',
  'client/src/extension.ts': 'extension',
  'client/src/debug/standalone.ts': 'debugAdapter',
  'client/src/workers/engine.ts': 'engineWorker',
  'server/src/decompile/prune/worker.ts': 'pruneWorker',
};

const polyfill = `if(typeof Object.groupBy!=='function'){Object.groupBy=function(it,f){const o=Object.create(null);let i=0;for(const x of it){const k=f(x,i++);(o[k]??=[]).push(x);}return o;};}
if(typeof Map.groupBy!=='function'){Map.groupBy=function(it,f){const o=new Map();let i=0;for(const x of it){const k=f(x,i++);if(!o.has(k))o.set(k,[]);o.get(k).push(x);}return o;};}`;

// vega-canvas's Node build top-level-awaits the optional native `canvas` package, which CJS cannot bundle; its
// browser build has the same API and falls back to estimated text metrics, which is all SVG rendering needs.
const vegaCanvasWithoutNative = {
  name: 'vega-canvas-without-native',
  setup(build) {
    build.onResolve({ filter: /^vega-canvas$/ }, () => ({ path: join(dirname(require.resolve('vega-canvas')), 'vega-canvas.browser.js') }));
  },
};

const options = {
  entryPoints: Object.fromEntries(Object.entries(entries).map(([src, name]) => [name, src])),
  outdir: 'out',
  outExtension: { '.js': '.cjs' },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  external: ['vscode'],
  // import.meta.url is used by a few ESM dependencies; give the CJS bundle a working equivalent.
  define: { 'import.meta.url': 'importMetaUrl' },
  banner: { js: `const importMetaUrl = require('url').pathToFileURL(__filename).href;\n${polyfill}` },
  logLevel: 'warning',
  plugins: [vegaCanvasWithoutNative],
};

function copyWasm() {
  const wasmDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  const dist = join(wasmDir, 'dist');
  mkdirSync('out', { recursive: true });
  for (const f of readdirSync(dist)) if (f.endsWith('.wasm')) copyFileSync(join(dist, f), join('out', f));
}

copyWasm();
if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
