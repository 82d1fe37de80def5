import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { initBackend } from '../../server/src/model/backend';
import { createTfModel, forward, makeBatch } from '../../server/src/model/forward';
import { fixtureConfig, fixtureWeights, type FixtureSpec } from '../fixtures/models';

const SPEC: FixtureSpec = { layers: 1, heads: 2, width: 8, symbols: ['a', 'b'], positions: 16, seed: 8 };

async function logitsOn(): Promise<Float32Array> {
  const config = fixtureConfig(SPEC);
  const tm = createTfModel(config, fixtureWeights(SPEC));
  const out = tf.tidy(() => forward(tm, makeBatch(config, [[0, 1, 2, 1, 0], [1, 1]])).logits);
  const data = (await out.data()) as Float32Array;
  out.dispose();
  tm.dispose();
  return data;
}

describe('initBackend', () => {
  afterAll(async () => {
    await initBackend('wasm');
  });

  it('defaults to wasm, is idempotent, and the backend is swappable with the same results', async () => {
    const first = initBackend();
    expect(initBackend()).toBe(first);
    expect(await first).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    const wasm = await logitsOn();
    expect(await initBackend('cpu')).toBe('cpu');
    const cpu = await logitsOn();
    let diff = 0;
    wasm.forEach((x, i) => (diff = Math.max(diff, Math.abs(x - cpu[i]))));
    expect(diff).toBeLessThan(1e-5);
    expect(await initBackend('wasm')).toBe('wasm');
  });

  it('uses tfjs-node for the tensorflow backend where it is installed, and explains when it is not', async () => {
    let installed = true;
    try {
      createRequire(import.meta.url).resolve('@tensorflow/tfjs-node');
    } catch {
      installed = false;
    }
    if (installed) expect(await initBackend('tensorflow')).toBe('tensorflow');
    else await expect(initBackend('tensorflow')).rejects.toThrow(/needs @tensorflow\/tfjs-node, which could not be loaded/);
    expect(await initBackend('wasm')).toBe('wasm');
  });
});
