// Runs engine jobs in worker threads (out/engineWorker.cjs), one worker per job: the extension host only relays
// progress and cancellation, so it stays responsive however long a job takes.
import { Worker } from 'node:worker_threads';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Job, JobResult, Progress, WorkerToHost } from './workers/protocol';

export class JobError extends Error {
  constructor(
    message: string,
    readonly user: boolean,
    readonly cancelled: boolean,
  ) {
    super(message);
    this.name = 'JobError';
  }
}

export interface RunningJob {
  id: number;
  title: string;
  started: number;
  progress?: Progress;
}

export class JobRunner implements vscode.Disposable {
  private nextId = 1;
  private readonly running = new Map<number, { info: RunningJob; worker: Worker }>();

  constructor(
    private readonly extensionPath: string,
    private readonly log: vscode.OutputChannel,
  ) {}

  /** Jobs in flight, for the status command. */
  list(): RunningJob[] {
    return [...this.running.values()].map((r) => ({ ...r.info }));
  }

  run<T extends JobResult>(
    title: string,
    job: Job,
    options: { onProgress?: (p: Progress) => void; token?: vscode.CancellationToken } = {},
  ): Promise<T> {
    const id = this.nextId++;
    const worker = new Worker(path.join(this.extensionPath, 'out', 'engineWorker.cjs'), {
      workerData: job,
      // Large models and long extractions need more than the default young-generation limits.
      resourceLimits: { maxOldGenerationSizeMb: 4096 },
      stderr: true,
      stdout: true,
    });
    const info: RunningJob = { id, title, started: Date.now() };
    this.running.set(id, { info, worker });
    worker.stdout.on('data', (d: Buffer) => this.log.append(d.toString()));
    worker.stderr.on('data', (d: Buffer) => this.log.append(d.toString()));
    this.log.appendLine(`[job ${id}] ${title}: started`);

    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        this.running.delete(id);
        cancelSub?.dispose();
        clearTimeout(killTimer);
        void worker.terminate();
        fn();
      };
      let killTimer: ReturnType<typeof setTimeout> | undefined;
      const cancelSub = options.token?.onCancellationRequested(() => {
        this.log.appendLine(`[job ${id}] cancel requested`);
        worker.postMessage({ type: 'cancel' });
        // The engine checks its AbortSignal between steps; a worker stuck in one long step is stopped outright.
        killTimer = setTimeout(() => finish(() => reject(new JobError('cancelled', true, true))), 5000);
      });
      worker.on('message', (msg: WorkerToHost) => {
        if (msg.type === 'progress') {
          info.progress = msg.progress;
          options.onProgress?.(msg.progress);
        } else if (msg.type === 'result') {
          this.log.appendLine(`[job ${id}] done in ${((Date.now() - info.started) / 1000).toFixed(1)} s`);
          finish(() => resolve(msg.value as T));
        } else {
          this.log.appendLine(`[job ${id}] ${msg.cancelled ? 'cancelled' : 'failed'}: ${msg.message}`);
          finish(() => reject(new JobError(msg.message, msg.user, msg.cancelled)));
        }
      });
      worker.on('error', (err) => {
        this.log.appendLine(`[job ${id}] worker error: ${err.stack ?? err.message}`);
        finish(() => reject(new JobError(err.message, false, false)));
      });
      worker.on('exit', (code) => {
        finish(() => reject(new JobError(`the worker stopped unexpectedly (exit code ${code})`, false, false)));
      });
    });
  }

  dispose(): void {
    for (const { worker } of this.running.values()) void worker.terminate();
    this.running.clear();
  }
}

/** Runs a job behind a cancellable progress notification whose text follows the engine's stages. */
export function runWithProgress<T extends JobResult>(
  runner: JobRunner,
  title: string,
  job: Job,
): Promise<T> {
  return Promise.resolve(
    vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title, cancellable: true },
      (progress, token) => {
        let reported = 0;
        return runner.run<T>(title, job, {
          token,
          onProgress: (p) => {
            // withProgress takes increments; the engine reports absolute fractions.
            const pct = Math.max(0, Math.min(100, Math.round(p.fraction * 100)));
            const increment = Math.max(0, pct - reported);
            reported = Math.max(reported, pct);
            progress.report({ message: `${p.stage}${p.message ? `: ${p.message}` : ''} (${pct}%)`, increment });
          },
        });
      },
    ),
  );
}

/** Shows a job failure the way the user needs it: user errors as they are, internal ones pointing at the log. */
export function showJobError(err: unknown, what: string, log: vscode.OutputChannel): void {
  if (err instanceof JobError && err.cancelled) {
    void vscode.window.showInformationMessage(`${what} cancelled.`);
  } else if (err instanceof JobError && err.user) {
    void vscode.window.showErrorMessage(`${what}: ${err.message}`);
  } else {
    const message = err instanceof Error ? err.message : String(err);
    log.appendLine(`${what} failed: ${err instanceof Error ? (err.stack ?? message) : message}`);
    void vscode.window.showErrorMessage(`${what} failed: ${message} (see the "RASP" output for details)`);
  }
}
