// The default ProgramRunner: variable values from the project's interpreter (one Plan per program, each sequence
// run only as far as the last requested variable).
import { Execution, Plan } from '../../interpreter/index';
import type { Program } from '../../program/types';
import type { Dense } from './linalg';
import type { ProgramRunner } from './types';

export function interpreterRunner(signal?: AbortSignal): ProgramRunner {
  return {
    values(program: Program, inputs: readonly (readonly number[])[], names: readonly string[]): Map<string, Dense[]> {
      const plan = new Plan(program);
      const wanted = new Set(names);
      let last = -1;
      program.statements.forEach((s, i) => {
        if (wanted.has(s.name)) last = i;
      });
      const out = new Map<string, Dense[]>(names.map((n) => [n, []]));
      for (const ids of inputs) {
        const ex = new Execution(program, [...ids], { plan, ...(signal ? { signal } : {}) });
        while (ex.index <= last) ex.step();
        for (const n of names) {
          const v = ex.value(n);
          if (!v) throw new Error(`the interpreter computed no value for ${n}`);
          out.get(n)?.push({ rows: v.n, cols: v.basis.size, data: v.data });
        }
      }
      return out;
    },
  };
}
