// TensorFlow.js backend selection. Default: wasm (fast XNNPACK matmuls, installs everywhere). `tensorflow`
// (@tensorflow/tfjs-node) is used where it installs; `cpu` is the plain-JS fallback.
//
// The wasm binaries are looked up, in order: next to the running bundle (esbuild.mjs copies them into out/,
// which is what the CLI and the VS Code extension run from), then in node_modules (tests, scripts).
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type BackendName = 'wasm' | 'cpu' | 'tensorflow';

const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];

let pending: Promise<string> | undefined;
let pendingName: BackendName | undefined;
let wasmPathsSet = false;

/**
 * Makes `name` the active tfjs backend and returns its name. Idempotent: repeated calls with the same name share
 * one initialisation; a different name switches backends.
 */
export function initBackend(name: BackendName = defaultBackend()): Promise<string> {
  if (pending && pendingName === name) return pending;
  pendingName = name;
  pending = activate(name).catch((err: unknown) => {
    pending = undefined;
    pendingName = undefined;
    throw err;
  });
  return pending;
}

/** RASP_TF_BACKEND overrides the default (e.g. `tensorflow` on machines where tfjs-node installs). */
function defaultBackend(): BackendName {
  const env = process.env.RASP_TF_BACKEND;
  return env === 'cpu' || env === 'tensorflow' || env === 'wasm' ? env : 'wasm';
}

async function activate(name: BackendName): Promise<string> {
  if (name === 'wasm' && !wasmPathsSet) {
    const dir = wasmDir();
    // A file map (not a prefix) so each binary is read from exactly the folder we found it in.
    setWasmPaths(Object.fromEntries(WASM_FILES.map((f) => [f, join(dir, f)])));
    wasmPathsSet = true;
  }
  if (name === 'tensorflow') {
    // A computed specifier keeps bundlers from trying to resolve an optional native package.
    const pkg = ['@tensorflow', 'tfjs-node'].join('/');
    try {
      await import(pkg);
    } catch (err) {
      throw new Error(`the "tensorflow" backend needs @tensorflow/tfjs-node, which could not be loaded: ${String(err)}`);
    }
  }
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`tfjs backend "${name}" failed to initialise`);
  await tf.ready();
  return tf.getBackend();
}

function wasmDir(): string {
  const candidates: string[] = [];
  const here = moduleDir();
  if (here) candidates.push(here);
  try {
    const req = createRequire(here ? join(here, 'x.js') : join(process.cwd(), 'x.js'));
    candidates.push(join(dirname(req.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist'));
  } catch {
    // not resolvable from here (packaged extension): only the bundle folder remains
  }
  for (const dir of candidates) if (existsSync(join(dir, 'tfjs-backend-wasm-simd.wasm'))) return dir;
  throw new Error(`tfjs wasm binaries not found (looked in ${candidates.join(', ')}); run \`npm run build\``);
}

function moduleDir(): string | undefined {
  try {
    return dirname(fileURLToPath(import.meta.url));
  } catch {
    return typeof __dirname === 'string' ? __dirname : undefined;
  }
}
