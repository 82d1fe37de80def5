// The two-core sparsity search: the lambda schedule, and a lambda run in the pruning worker (out/pruneWorker.cjs,
// its own tfjs instance and masked model rebuilt from plain data) equals the same run on the calling thread.
import { describe, expect, it } from 'vitest';
import { nextLambdas } from '../../server/src/decompile/prune/parallel';

describe('nextLambdas (two runs per round)', () => {
  const T = 0.9;
  it('starts at lambda0 and ten times it', () => {
    expect(nextLambdas([], T, 1e-3)).toEqual([1e-3, 1e-2]);
  });
  it('widens upwards while everything passes and downwards while everything fails', () => {
    expect(nextLambdas([{ lambda: 1e-3, match: 1 }, { lambda: 1e-2, match: 0.95 }], T, 1e-3)).toEqual([1e-1, 1]);
    const down = nextLambdas([{ lambda: 1e-3, match: 0.5 }, { lambda: 1e-2, match: 0.4 }], T, 1e-3);
    expect(down[0]).toBeCloseTo(1e-4, 12);
    expect(down[1]).toBeCloseTo(1e-5, 12);
  });
  it('splits a bracket in thirds (log scale) between the largest pass and the smallest fail above it', () => {
    const [a, b] = nextLambdas([{ lambda: 1e-3, match: 0.95 }, { lambda: 1e-2, match: 0.5 }, { lambda: 1e-4, match: 0.99 }], T, 1e-3);
    expect(Math.log10(a)).toBeCloseTo(-3 + 1 / 3, 9);
    expect(Math.log10(b)).toBeCloseTo(-3 + 2 / 3, 9);
  });
  it('stops once the bracket is narrower than a factor 1.5', () => {
    expect(nextLambdas([{ lambda: 1e-3, match: 0.95 }, { lambda: 1.2e-3, match: 0.5 }], T, 1e-3)).toEqual([]);
  });
});
