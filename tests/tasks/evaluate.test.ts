import { describe, expect, it } from 'vitest';
import { evaluateTask, lengthBatches } from '../../server/src/tasks/evaluate';
import { getTask, sampleBins, type Task } from '../../server/src/tasks/index';
import { CancelledError } from '../../server/src/util/errors';

/** A "model" that answers with the oracle, except on sequences `wrong` picks. */
function oracleModel(task: Task, wrong: (seq: number[]) => boolean) {
  const V = task.vocab.length;
  const batches: number[] = [];
  const fn = async (batch: number[][]) => {
    batches.push(batch.length);
    return batch.map((seq) => {
      const logits = new Float32Array(seq.length * V).fill(-3);
      const labels = task.labels(seq);
      labels.positions.forEach((p, i) => {
        if (labels.objective === 'ce') logits[p * V + labels.tokens[i]] = 3;
        else labels.rows[i].forEach((b, j) => (logits[p * V + j] = b ? 3 : -3));
      });
      if (wrong(seq)) {
        const p = labels.positions[0];
        for (let j = 0; j < V; j++) logits[p * V + j] = -logits[p * V + j];
      }
      return logits;
    });
  };
  return { fn, batches };
}

describe('evaluateTask', () => {
  it('scores per bin against the oracle', async () => {
    for (const name of ['sort', 'bce_D3']) {
      const task = getTask(name);
      // wrong on long inputs only: 1.0 on the first bin, 0.0 on the last, in between on the middle one
      const { fn, batches } = oracleModel(task, (seq) => task.lengthOf(seq) > 75);
      const r = await evaluateTask(task, fn, { bins: [[0, 50], [51, 100], [101, 150]], samples: 40, seed: 4, batchTokens: 2000 });
      expect(r.bins.map((b) => b.samples)).toEqual([40, 40, 40]);
      expect(r.bins[0].accuracy).toBe(1);
      expect(r.bins[2].accuracy).toBe(0);
      expect(r.bins[1].accuracy).toBeGreaterThan(0.2);
      expect(r.bins[1].accuracy).toBeLessThan(0.8);
      expect(r.bins[1].correct).toBe(Math.round(r.bins[1].accuracy * 40));
      expect(Math.max(...batches)).toBeLessThanOrEqual(64);
    }
  });

  it('uses the same samples for the same seed and stops when cancelled', async () => {
    const task = getTask('bin_majority');
    const seen: string[][] = [[], []];
    for (const k of [0, 1]) {
      await evaluateTask(task, async (b) => (b.forEach((s) => seen[k].push(s.join(' '))), b.map((s) => new Float32Array(s.length * 6))), {
        bins: [[0, 20]],
        samples: 30,
        seed: 9,
      });
    }
    expect(seen[0]).toEqual(seen[1]);
    const ac = new AbortController();
    ac.abort();
    await expect(evaluateTask(task, oracleModel(task, () => false).fn, { bins: [[0, 20]], samples: 5, seed: 1, signal: ac.signal })).rejects.toThrow(CancelledError);
  });

  it('batches sequences of similar length within the token budget', () => {
    const task = getTask('unique_copy');
    const seqs = sampleBins(task, [[1, 150]], 200, 1)[0];
    const groups = lengthBatches(seqs, 4000, 32);
    expect(groups.flat().sort((a, b) => a - b)).toEqual(seqs.map((_, i) => i));
    for (const g of groups) {
      const longest = Math.max(...g.map((i) => seqs[i].length));
      expect(g.length <= 32 && (g.length === 1 || g.length * longest <= 4000)).toBe(true);
    }
  });
});
