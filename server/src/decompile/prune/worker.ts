// Pruning worker (bundled as out/pruneWorker.cjs, see parallel.ts): rebuilds the masked model and the cached
// batches from plain data once, then runs one lambda run per 'run' message on its own tfjs-wasm instance.
import * as tf from '@tensorflow/tfjs';
import { parentPort } from 'node:worker_threads';
import { initBackend } from '../../model/backend';
import { getTask } from '../../tasks';
import { CancelledError } from '../../util/errors';
import { MaskedModel, type Batch } from './masked';
import type { HostToPruneWorker, PruneWorkerToHost, WorkerSetup } from './parallel';
import { runOnce } from './search';
import { makeBatch, type PruneContext } from './train';

const port = parentPort;
if (!port) throw new Error('pruneWorker must run in a worker thread');
let controller = new AbortController();
let ctx: PruneContext | undefined;
let queue: Promise<void> = Promise.resolve();

function post(m: PruneWorkerToHost): void {
  port!.postMessage(m);
}

async function setup(s: WorkerSetup): Promise<void> {
  await initBackend();
  const task = getTask(s.task);
  const rebuild = ({ seqs, target }: { seqs: number[][]; target: Float32Array }): Batch => {
    const b = makeBatch(s.folded, task, s.objective, seqs, null);
    b.target.dispose();
    return { ...b, target: tf.tensor3d(target, [b.B, b.T, s.folded.V]) };
  };
  const train = s.train.map(rebuild);
  const model = new MaskedModel(s.graph, s.folded, s.init);
  let lastPost = 0;
  ctx = {
    graph: s.graph,
    folded: s.folded,
    task,
    objective: s.objective,
    model,
    train,
    ...(s.long ? { long: s.long.map(rebuild) } : {}),
    evalSets: s.evalSets,
    evalBatch: s.evalBatch,
    hooks: {
      get signal() {
        return controller.signal;
      },
      onProgress: (p) => {
        // a few updates a second are plenty for the host's progress bar
        const now = Date.now();
        if (now - lastPost < 200 && p.fraction < 1) return;
        lastPost = now;
        post({ type: 'progress', stage: p.stage, fraction: p.fraction, ...(p.message ? { message: p.message } : {}) });
      },
    },
  };
  post({ type: 'ready' });
}

port.on('message', (m: HostToPruneWorker) => {
  if (m.type === 'cancel') {
    controller.abort(new CancelledError());
    return;
  }
  queue = queue.then(async () => {
    try {
      if (m.type === 'setup') await setup(m.setup);
      else {
        if (!ctx) throw new Error('run before setup');
        controller = new AbortController();
        const j = m.job;
        post({ type: 'result', result: await runOnce(ctx, j.lambda, j.start, j.theta1, j.settings, j.runIndex) });
      }
    } catch (err) {
      post({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err), cancelled: err instanceof CancelledError });
    }
  });
});
