// Incremental evaluation for the search (issue: primitives on width-256 models). The stage judges hundreds of
// candidate programs that differ from the accepted one in one or two statements; running each from scratch
// re-computes every unchanged statement, above all the opaque MLPs (d_model x 4·d_model per position), for every
// sequence. Here every statement gets a *signature*: what it computes (kind, op, function) and the signatures of
// what it reads, with matrices and MLP weights compared by identity (the stage never edits them in place: programs
// are values). Per sequence, a statement whose signature was computed recently is taken from that run
// (Execution.adopt: the values themselves, shared), so a candidate re-runs only the statements its edit changed and
// what depends on them; a candidate whose prediction's signature is known costs nothing. The values are bit for bit
// those of a full run (same interpreter, same statements, same MLP kernel), so every decision is the same.
import type { MlpKernel } from '../../interpreter/elementwise';
import { Execution, Plan } from '../../interpreter/index';
import type { Op, Program, Statement } from '../../program/types';
import { CancelledError } from '../../util/errors';

/** Per-statement signatures of a program (undefined: never reused, e.g. hand-written maps and what reads them). */
export type Signatures = (number | undefined)[];

interface Entry {
  /** The run that computed (or adopted) the value, and the statement's name there. */
  ex: Execution;
  name: string;
  /** For a prediction: did the sequence match the reference decisions. */
  matched?: boolean;
  used: number;
}

export interface IncrementalStats {
  /** Statement runs taken from earlier runs / computed. */
  reused: number;
  computed: number;
  /** Sequences whose prediction was known (no run at all). */
  known: number;
}

export class SignatureTable {
  private readonly ids = new WeakMap<object, number>();
  private nextId = 1;
  private readonly interned = new Map<string, number>();

  private idOf(o: object): number {
    let id = this.ids.get(o);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(o, id);
    }
    return id;
  }

  private intern(key: string): number {
    let id = this.interned.get(key);
    if (id === undefined) {
      id = this.interned.size + 1;
      this.interned.set(key, id);
    }
    return id;
  }

  private opKey(p: Program, op: Op | undefined): string | undefined {
    if (!op) return '-';
    if (op.kind === 'matrix') {
      const m = p.matrices.get(op.ref);
      return m ? `m${this.idOf(m)}` : undefined;
    }
    // A predicate's matrix is built from its label (the expression as written) and scale.
    return op.kind === 'predicate' ? `p${op.scale}:${op.label}` : `u${op.name}:${op.scale}:${op.label}`;
  }

  /** Signatures of every statement, in program order. */
  of(p: Program): Signatures {
    const header = this.idOf(p.header);
    const byName = new Map<string, number | undefined>([
      ['token', this.intern(`T${header}`)],
      ['pos', this.intern(`P${header}`)],
    ]);
    const ref = (n: string | undefined): string | undefined => {
      if (n === undefined) return '';
      const s = byName.get(n);
      return s === undefined ? undefined : String(s);
    };
    const all = (names: readonly string[]): string | undefined => {
      const parts: string[] = [];
      for (const n of names) {
        const s = ref(n);
        if (s === undefined) return undefined;
        parts.push(s);
      }
      return parts.join(',');
    };
    return p.statements.map((s) => {
      const key = this.keyOf(p, s, ref, all);
      const sig = key === undefined ? undefined : this.intern(`${header}|${key}`);
      byName.set(s.name, sig);
      return sig;
    });
  }

  private keyOf(
    p: Program,
    s: Statement,
    ref: (n: string | undefined) => string | undefined,
    all: (names: readonly string[]) => string | undefined,
  ): string | undefined {
    const parts: (string | undefined)[] = [];
    switch (s.kind) {
      case 'select':
        parts.push('S', ref(s.q), ref(s.k), this.opKey(p, s.op), this.opKey(p, s.specialOp));
        break;
      case 'aggregate':
        // Selector scores are summed in the listed order (float sums depend on it).
        parts.push('A', all(s.selectors), ref(s.v));
        break;
      case 'elementwise': {
        if (s.fn.name === 'expr') return undefined;
        let fn: string | undefined;
        if (s.fn.name === 'mlp') {
          const mlp = p.mlps.get(s.fn.ref);
          fn = mlp ? `mlp${this.idOf(mlp)}` : undefined;
        } else {
          fn = JSON.stringify(s.fn);
        }
        parts.push('E', fn, all(s.inputs));
        break;
      }
      case 'project':
        parts.push('J', ref(s.inp), this.opKey(p, s.op), this.opKey(p, s.specialOp));
        break;
      case 'prediction':
        parts.push('R', all(s.terms));
        break;
    }
    if (parts.some((x) => x === undefined)) return undefined;
    return parts.join('|');
  }
}

/**
 * Runs programs on a fixed list of sequences, reusing per sequence the values of statements whose signature was
 * computed in one of the last `keep` evaluations (an evaluation = one call of run/values with a new generation).
 */
export class IncrementalRuns {
  readonly stats: IncrementalStats = { reused: 0, computed: 0, known: 0 };
  private readonly cache: Map<number, Entry>[];
  private generation = 0;

  constructor(
    readonly seqs: readonly (readonly number[])[],
    private readonly sigs: SignatureTable = new SignatureTable(),
    private readonly keep = 3,
    private readonly signal?: AbortSignal,
    /** Opaque MLP lines' kernel (ExecutionOptions.mlpKernel); the values are then those of that kernel's runs. */
    private readonly mlpKernel?: MlpKernel,
  ) {
    this.cache = seqs.map(() => new Map());
  }

  /** Starts an evaluation of `program`: its signatures and plan, used by run() for each sequence. */
  begin(program: Program): { program: Program; plan: Plan; sigs: Signatures } {
    this.generation++;
    return { program, plan: new Plan(program), sigs: this.sigs.of(program) };
  }

  /** Drops what no evaluation used lately (keeps memory to a few versions of each value). */
  private evict(c: Map<number, Entry>): void {
    const oldest = this.generation - this.keep;
    for (const [k, e] of c) if (e.used <= oldest) c.delete(k);
  }

  /**
   * Runs sequence `i` up to statement index `upto` (inclusive; default: the whole program) and returns the run,
   * or, for a whole run whose prediction is known, undefined and the known match.
   */
  run(ev: { program: Program; plan: Plan; sigs: Signatures }, i: number, upto = ev.program.statements.length - 1): { ex?: Execution; matched?: boolean } {
    if (this.signal?.aborted) throw new CancelledError();
    const c = this.cache[i];
    // Everything this program computes stays (a run that stops at a known prediction still needs its inputs
    // later); what no recent program used goes.
    for (const sig of ev.sigs) {
      const e = sig !== undefined ? c.get(sig) : undefined;
      if (e) e.used = this.generation;
    }
    this.evict(c);
    const stmts = ev.program.statements;
    const last = stmts.length - 1;
    if (upto === last && stmts[last]?.kind === 'prediction') {
      const sig = ev.sigs[last];
      const known = sig !== undefined ? c.get(sig) : undefined;
      if (known && known.matched !== undefined) {
        this.stats.known++;
        return { matched: known.matched };
      }
    }
    const ex = new Execution(ev.program, [...this.seqs[i]], {
      plan: ev.plan,
      ...(this.signal ? { signal: this.signal } : {}),
      ...(this.mlpKernel ? { mlpKernel: this.mlpKernel } : {}),
    });
    for (let k = 0; k <= upto; k++) {
      const sig = ev.sigs[k];
      const hit = sig !== undefined ? c.get(sig) : undefined;
      if (hit) {
        ex.adopt(hit.ex, hit.name);
        this.stats.reused++;
      } else {
        ex.step();
        this.stats.computed++;
        if (sig !== undefined) c.set(sig, { ex, name: stmts[k].name, used: this.generation });
      }
    }
    return { ex };
  }

  /** Per sequence: whether `program`'s prediction is known to have matched (remember), without running anything. */
  knownMatches(program: Program): (boolean | undefined)[] {
    const sigs = this.sigs.of(program);
    const sig = program.statements[program.statements.length - 1]?.kind === 'prediction' ? sigs[sigs.length - 1] : undefined;
    return this.cache.map((c) => (sig !== undefined ? c.get(sig)?.matched : undefined));
  }

  /** Records whether the run of sequence `i` matched, so the same prediction is never run again. */
  remember(ev: { sigs: Signatures }, i: number, matched: boolean): void {
    const sig = ev.sigs[ev.sigs.length - 1];
    if (sig === undefined) return;
    const e = this.cache[i].get(sig);
    if (e) e.matched = matched;
  }

  /** Frees every cached value. */
  clear(): void {
    for (const c of this.cache) c.clear();
  }
}
