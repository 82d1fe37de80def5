// Property tests over random programs and inputs: the fast paths (one-hot lookups, row widths, factored scores,
// running means) agree with a plain dense evaluation of d-rasp.md 6, attention is a causal distribution, and
// runs are causal and batch-independent.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Execution, opMatrix, runBatch, runProgram, UNIT_BASIS } from '../../server/src/interpreter/index';
import { randomProgram } from '../../server/src/interpreter/random';
import { inferBases } from '../../server/src/program/bases';
import type { Basis, Program, ProjectStatement, SelectStatement } from '../../server/src/program/types';

const P = 24;
const V = 9; // 5 normal tokens + 4 special

/** Dense reference evaluation (no elementwise statements): every product written out in full. */
function reference(program: Program, ids: number[]): Map<string, Float64Array> {
  const bases = inferBases(program);
  const n = ids.length;
  const env = new Map<string, Float64Array>();
  const onehot = (size: number, at: (i: number) => number) => {
    const x = new Float64Array(n * size);
    for (let i = 0; i < n; i++) x[i * size + at(i)] = 1;
    return x;
  };
  env.set('token', onehot(V, (i) => ids[i]));
  env.set('pos', onehot(P, (i) => i));
  const scores = new Map<string, Float64Array>();
  const size = (name: string) => (bases.get(name) as Basis).size;
  const matrixOf = (stmt: SelectStatement | ProjectStatement, rows: Basis, cols: Basis) => {
    const m = opMatrix(program, stmt.op, rows, cols);
    const data = Float64Array.from(m.data);
    if (stmt.specialOp) {
      const sp = opMatrix(program, stmt.specialOp, rows, cols);
      const special = Object.values(program.header.special) as number[];
      for (const r of special) for (let c = 0; c < cols.size; c++) data[r * cols.size + c] = sp.data[r * cols.size + c];
    }
    return data;
  };
  for (const st of program.statements) {
    if (st.kind === 'select') {
      const kb = bases.get(st.k) as Basis;
      const qb = st.q ? (bases.get(st.q) as Basis) : UNIT_BASIS;
      const M = matrixOf(st, qb, kb);
      const xk = env.get(st.k) as Float64Array;
      const xq = st.q ? (env.get(st.q) as Float64Array) : new Float64Array(n).fill(1);
      const S = new Float64Array(n * n);
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let r = 0; r < qb.size; r++) for (let c = 0; c < kb.size; c++) s += xq[i * qb.size + r] * M[r * kb.size + c] * xk[j * kb.size + c];
          S[i * n + j] = s;
        }
      scores.set(st.name, S);
      env.set(`select ${st.name}`, S);
    } else if (st.kind === 'aggregate') {
      const d = size(st.v);
      const xv = env.get(st.v) as Float64Array;
      const out = new Float64Array(n * d);
      const scale = program.header.dHead ? Math.sqrt(program.header.dHead) : 1;
      for (let i = 0; i < n; i++) {
        const z = Array.from({ length: i + 1 }, (_, j) => st.selectors.reduce((s, name) => s + (scores.get(name) as Float64Array)[i * n + j], 0) / scale);
        const max = Math.max(...z);
        const e = z.map((x) => Math.exp(x - max));
        const sum = e.reduce((s, x) => s + x, 0);
        e.forEach((w, j) => {
          for (let c = 0; c < d; c++) out[i * d + c] += (w / sum) * xv[j * d + c];
        });
      }
      env.set(st.name, out);
    } else if (st.kind === 'project') {
      const ib = st.inp ? (bases.get(st.inp) as Basis) : UNIT_BASIS;
      const B = matrixOf(st, ib, bases.get('token') as Basis);
      const x = st.inp ? (env.get(st.inp) as Float64Array) : new Float64Array(n).fill(1);
      const out = new Float64Array(n * V);
      for (let i = 0; i < n; i++) for (let r = 0; r < ib.size; r++) for (let c = 0; c < V; c++) out[i * V + c] += x[i * ib.size + r] * B[r * V + c];
      env.set(st.name, out);
    } else if (st.kind === 'prediction') {
      const out = new Float64Array(n * V);
      for (const t of st.terms) (env.get(t) as Float64Array).forEach((v, idx) => (out[idx] += v));
      env.set('logits', out);
    } else {
      throw new Error('reference: no element-wise statements');
    }
  }
  return env;
}

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
  it('fast paths agree with a dense evaluation (all scores, values and logits)', () => {
    fc.assert(
      fc.property(programArb, inputArb, (opts, ids) => {
        const program = randomProgram(opts.seed, { tokens: 5, positions: P, elementwise: false, ...opts, ...(opts.dHead ? { dHead: opts.dHead } : {}) });
        const ref = reference(program, ids);
        const ex = new Execution(program, ids);
        const result = ex.runToEnd();
        for (const [name, want] of ref) {
          const got = name === 'logits' ? result.logits : name.startsWith('select ') ? ex.selector(name.slice(7))?.scores : ex.value(name)?.data;
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
