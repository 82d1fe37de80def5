import { describe, expect, it } from 'vitest';
import { Rng, deriveSeed } from '../../server/src/util/rng';

describe('Rng', () => {
  it('is deterministic per seed and differs across seeds', () => {
    const draw = (seed: number) => {
      const r = new Rng(seed);
      return Array.from({ length: 8 }, () => r.uint32());
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
    expect(draw(2 ** 40)).not.toEqual(draw(0));
    expect(deriveSeed(1, 2)).toBe(deriveSeed(1, 2));
    expect(deriveSeed(1, 2)).not.toBe(deriveSeed(1, 3));
  });

  it('draws integers in range, roughly uniformly', () => {
    const r = new Rng(1);
    const counts = new Array<number>(6).fill(0);
    for (let i = 0; i < 60000; i++) counts[r.int(0, 5)]++;
    for (const c of counts) expect(Math.abs(c - 10000)).toBeLessThan(400);
    for (let i = 0; i < 1000; i++) {
      const x = r.next();
      expect(x >= 0 && x < 1).toBe(true);
    }
    expect(() => r.int(3, 2)).toThrow(RangeError);
  });

  it('shuffles, samples without replacement and weights', () => {
    const r = new Rng(2);
    const xs = r.shuffle(Array.from({ length: 50 }, (_, i) => i));
    expect([...xs].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const s = r.sampleWithoutReplacement(150, 150);
    expect(new Set(s).size).toBe(150);
    const hits = [0, 0];
    for (let i = 0; i < 10000; i++) hits[r.weighted([1, 3])]++;
    expect(hits[1] / 10000).toBeGreaterThan(0.72);
    expect(hits[1] / 10000).toBeLessThan(0.78);
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < 20000; i++) {
      const z = r.normal();
      sum += z;
      sq += z * z;
    }
    expect(Math.abs(sum / 20000)).toBeLessThan(0.03);
    expect(Math.abs(sq / 20000 - 1)).toBeLessThan(0.05);
  });
});
