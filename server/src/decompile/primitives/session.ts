// State shared by the stages of one simplifyProgram run: counted, cancellable evaluation and the step log.
import type { Program } from '../../program/types';
import { CancelledError } from '../../util/errors';
import type { Evaluate, StepRecord } from './types';

export class Session {
  evaluations = 0;
  readonly steps: StepRecord[] = [];
  /** Where the stage stopped trying candidates because the deadline passed (SimplifyStats.truncated). */
  truncated: string | undefined;

  constructor(
    private readonly evaluateFn: Evaluate,
    readonly signal?: AbortSignal,
    private readonly progress?: (p: { stage: string; fraction: number; message?: string }) => void,
    /** Date.now() after which no further candidate is tried (SimplifyOptions.deadline). */
    private readonly deadline?: number,
  ) {}

  /**
   * True once the deadline has passed: the caller stops trying candidates and keeps what was accepted (every
   * accepted step passed its screening). Records the first place it happened.
   */
  outOfTime(where: string): boolean {
    if (this.deadline === undefined || Date.now() <= this.deadline) return false;
    this.truncated ??= `time budget reached: no candidates tried from ${where} on`;
    return true;
  }

  checkCancelled(): void {
    if (this.signal?.aborted) throw new CancelledError();
  }

  async evaluate(p: Program, atLeast?: number, checkEvery?: number): Promise<number> {
    this.checkCancelled();
    this.evaluations++;
    return await this.evaluateFn(p, atLeast !== undefined ? { atLeast, ...(checkEvery !== undefined ? { checkEvery } : {}) } : undefined);
  }

  report(stage: string, fraction: number, message?: string): void {
    this.progress?.({ stage, fraction: Math.max(0, Math.min(1, fraction)), ...(message !== undefined ? { message } : {}) });
  }
}
