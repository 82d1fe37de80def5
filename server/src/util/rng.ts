// Seeded pseudo-random numbers for generators, sampling and training. Deterministic across platforms:
// sfc32 (a small, fast 32-bit generator with a 128-bit state), seeded through splitmix32 so that nearby
// seeds give unrelated streams. Not cryptographic.

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Mixes a seed and any number of integers (e.g. a bin index) into one 32-bit seed. */
export function deriveSeed(seed: number, ...parts: number[]): number {
  const st = { s: seed | 0 };
  let h = splitmix32(st);
  for (const p of parts) {
    st.s = (h ^ Math.imul(p | 0, 0x27d4eb2d)) | 0;
    h = splitmix32(st);
  }
  return h;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed = 0) {
    if (!Number.isFinite(seed)) throw new RangeError(`Rng: seed must be a finite number, got ${seed}`);
    // Seeds beyond 32 bits keep their high part instead of being truncated away.
    const hi = Math.floor(seed / 0x100000000) | 0;
    const st = { s: (seed >>> 0) ^ Math.imul(hi, 0x632be5ab) };
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
    for (let i = 0; i < 12; i++) this.uint32();
  }

  /** Uniform 32-bit unsigned integer. */
  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform float in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.uint32() >>> 5; // 27 bits
    const lo = this.uint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [lo, hi], both inclusive. */
  int(lo: number, hi: number): number {
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi < lo) {
      throw new RangeError(`Rng.int: bad range [${lo}, ${hi}]`);
    }
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** Fair coin. */
  bool(): boolean {
    return (this.uint32() & 1) === 1;
  }

  /** Uniformly chosen element. */
  choice<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('Rng.choice: empty list');
    return items[this.int(0, items.length - 1)];
  }

  /** Index drawn with probability proportional to weights[i] (non-negative, not all zero). */
  weighted(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) total += w;
    if (!(total > 0)) throw new RangeError('Rng.weighted: weights must have a positive sum');
    let r = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      r -= weights[i];
      if (r < 0) return i;
    }
    return weights.length - 1;
  }

  /** Standard normal (Box-Muller), for weight initialisation. */
  normal(): number {
    let u = this.next();
    while (u === 0) u = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** Fisher-Yates shuffle in place; returns the array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      const t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
    return items;
  }

  /** k distinct integers from [0, n), in random order. */
  sampleWithoutReplacement(n: number, k: number): number[] {
    if (k > n) throw new RangeError(`Rng.sampleWithoutReplacement: cannot draw ${k} of ${n}`);
    const pool = Array.from({ length: n }, (_, i) => i);
    for (let i = 0; i < k; i++) {
      const j = this.int(i, n - 1);
      const t = pool[i];
      pool[i] = pool[j];
      pool[j] = t;
    }
    return pool.slice(0, k);
  }
}
