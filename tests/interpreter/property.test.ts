// Property tests over random programs and inputs: the fast paths (one-hot lookups, row widths, factored scores,
// running means) agree with a plain dense evaluation of d-rasp.md 6, attention is a causal distribution, and
// runs are causal and batch-independent.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Execution, runBatch, runProgram } from '../../server/src/interpreter/index';
import { randomProgram } from '../../server/src/interpreter/random';
import { denseReference as reference } from './helpers';

const P = 24;
const V = 9; // 5 normal tokens + 4 special

const programArb = fc.record({
  seed: fc.integer({ min: 1, max: 1_000_000 }),
  dHead: fc.constantFrom(undefined, 4, 16),
  selectOn: fc.constantFrom('input' as const, 'any' as const),
  statements: fc.integer({ min: 6, max: 16 }),
});
const inputArb = fc.array(fc.integer({ min: 0, max: V - 1 }), { minLength: 1, maxLength: P });

function close(a: number, b: number, scale: number): boolean {
  return Math.abs(a - b) <= 1e-9 * (1 + Math.abs(b) + scale);
}

describe('interpreter properties', () => {
  it('fast paths agree with a dense evaluation (all scores, weights, values and logits)', () => {
    fc.assert(
      fc.property(programArb, inputArb, (opts, ids) => {
        const program = randomProgram(opts.seed, { tokens: 5, positions: P, elementwise: false, ...opts, ...(opts.dHead ? { dHead: opts.dHead } : {}) });
        const ref = reference(program, ids);
        const ex = new Execution(program, ids);
        const result = ex.runToEnd();
        for (const [name, want] of ref) {
          const got =
            name === 'logits'
              ? result.logits
              : name.startsWith('select ')
                ? ex.selector(name.slice(7))?.scores
                : name.startsWith('attention ')
                  ? ex.attention(name.slice(10))
                  : ex.value(name)?.data;
          expect(got, name).toBeDefined();
          const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0) * 1e-3;
          (got as Float64Array).forEach((v, idx) => {
            if (!close(v, want[idx], scale)) throw new Error(`${name}[${idx}]: ${v} vs reference ${want[idx]}`);
          });
        }
      }),
      { numRuns: 80 },
    );
  });

  it('attention rows are causal distributions; one-hot values aggregate to distributions', () => {
    fc.assert(
      fc.property(programArb, inputArb, (opts, ids) => {
        const program = randomProgram(opts.seed, { tokens: 5, positions: P, ...opts });
        const ex = new Execution(program, ids);
        ex.runToEnd();
        const n = ids.length;
        for (const st of program.statements) {
          if (st.kind !== 'aggregate') continue;
          const W = ex.attention(st.name) as Float64Array;
          for (let i = 0; i < n; i++) {
            let sum = 0;
            for (let j = 0; j < n; j++) {
              const w = W[i * n + j];
              expect(w).toBeGreaterThanOrEqual(0);
              if (j > i) expect(w).toBe(0);
              sum += w;
            }
            expect(sum).toBeCloseTo(1, 12);
          }
          if (st.v === 'token' || st.v === 'pos') {
            const v = ex.value(st.name);
            const d = v?.basis.size ?? 0;
            for (let i = 0; i < n; i++) {
              const row = Array.from(v?.data.slice(i * d, (i + 1) * d) ?? []);
              expect(Math.min(...row)).toBeGreaterThanOrEqual(0);
              expect(row.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 12);
            }
          }
        }
        const probs = ex.value('prediction');
        probs?.data.forEach((p) => {
          expect(p).toBeGreaterThanOrEqual(0);
          expect(p).toBeLessThanOrEqual(1);
        });
      }),
      { numRuns: 80 },
    );
  });

  it('runs are causal (a prefix gives the same values) and runBatch equals runProgram', () => {
    fc.assert(
      fc.property(programArb, inputArb, fc.integer({ min: 1, max: P }), (opts, ids, cut) => {
        const program = randomProgram(opts.seed, { tokens: 5, positions: P, ...opts });
        const prefix = ids.slice(0, Math.min(cut, ids.length));
        const [full, part] = runBatch(program, [ids, prefix]);
        expect(part).toEqual(runProgram(program, prefix));
        expect(full.prediction.slice(0, prefix.length)).toEqual(part.prediction);
        expect(Array.from(full.logits.slice(0, part.logits.length))).toEqual(Array.from(part.logits));
      }),
      { numRuns: 60 },
    );
  });
});
