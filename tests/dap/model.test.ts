// The debugger's "Model" scope over DAP: with a model folder attached, the real attention pattern of the head a
// line came from (via its provenance) sits next to the program's, with differences marked, plus the model's
// prediction. The model is a generated checkpoint whose query/key weights are zero, so its attention is exactly
// uniform over the prefix: it agrees with `aggregate(s=[], ...)` and disagrees with a previous-token select.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DebugClient } from '@vscode/debugadapter-testsupport';
import { saveModel } from '../../server/src/model/load';
import { referenceLogits } from '../../server/src/model/reference';
import type { Gpt2Config, Gpt2Weights } from '../../server/src/model/types';
import { fixtureCard, fixtureConfig, fixtureWeights, type FixtureSpec } from '../fixtures/models';
import { AdapterServer, children, collectOutput, fixture, launch, nextEvent, scopeVariables, stackFrames, scopes } from './harness';

const SPEC: FixtureSpec = { layers: 1, heads: 1, width: 8, symbols: ['a', 'b', 'c'], positions: 16, seed: 7 };

const server = new AdapterServer();
let dc: DebugClient;
let root: string;
let modelDir: string;
let config: Gpt2Config;
let weights: Gpt2Weights;

beforeAll(async () => {
  await server.start();
  root = await mkdtemp(join(tmpdir(), 'rasp-dap-model-'));
  modelDir = join(root, 'uniform');
  config = fixtureConfig(SPEC);
  weights = fixtureWeights(SPEC);
  const d = config.nEmbd;
  // Zero the query and key projections (the first 2d columns of c_attn): every score is 0, attention uniform.
  for (const block of weights.blocks) {
    for (let row = 0; row < d; row++) block.attn.cAttnW.data.fill(0, row * 3 * d, row * 3 * d + 2 * d);
    block.attn.cAttnB.data.fill(0, 0, 2 * d);
  }
  await saveModel(modelDir, config, weights, fixtureCard(SPEC));
});
afterAll(async () => {
  await server.stop();
  await rm(root, { recursive: true, force: true });
});
beforeEach(async () => {
  dc = await server.client();
});
afterEach(async () => {
  await dc.stop();
});

describe('Model scope', () => {
  it('shows the real attention of the head next to a matching program line, without a difference marker', async () => {
    const stop = nextEvent(dc, 'stopped');
    await launch(dc, { program: fixture('histogram.rasp'), model: modelDir, input: '<bos> a b b', breakpoints: [9] });
    await stop;
    const frames = await stackFrames(dc);
    expect((await scopes(dc, frames[0].id)).map((s) => s.name)).toEqual(['Values', 'Selectors', 'Model']);
    const model = await scopeVariables(dc, 'Model');
    expect(model.map((v) => v.name)).toEqual(['layer 0 head 0 (a1)', 'prediction (model)']);
    expect(model[0].value).toBe('attention 4×4, max |diff| vs a1 0');
    const rows = await children(dc, model[0].variablesReference);
    expect(rows.map((r) => r.name)).toEqual(['0: "<bos>"', '1: "a"', '2: "b"', '3: "b"']);
    const keys = await children(dc, rows[2].variablesReference);
    expect(keys.map((k) => k.value)).toEqual(['model 0.3333, program 0.3333', 'model 0.3333, program 0.3333', 'model 0.3333, program 0.3333']);
    expect(model[1].value).toContain('the program has not predicted yet');
  });

  it('marks where the model differs from the program: attention rows and the prediction', async () => {
    const output = collectOutput(dc);
    const stop = nextEvent(dc, 'stopped');
    await launch(dc, { program: fixture('previous.rasp'), model: modelDir, input: '<bos> a b c', breakpoints: [12] });
    await stop;
    const model = await scopeVariables(dc, 'Model');
    const head = model.find((v) => v.name.startsWith('layer 0 head 0 (a1)'))!;
    expect(head.name).toBe('layer 0 head 0 (a1) ≠');
    // The program looks only at the previous position; the model spreads 1/(i+1) over 0..i: at row 3, 1 - 1/4.
    expect(head.value).toMatch(/max \|diff\| vs a1 0\.75 ≠$/);
    const rows = await children(dc, head.variablesReference);
    expect(rows[0].name).toBe('0: "<bos>"');
    expect(rows[2].name).toBe('2: "b" ≠');
    const keys = await children(dc, rows[2].variablesReference);
    expect(keys[1].value).toBe('model 0.3333, program 1 ≠');
    expect(keys[0].value).toBe('model 0.3333, program 0 ≠');

    const ended = nextEvent(dc, 'terminated');
    const step = nextEvent(dc, 'stopped');
    await dc.nextRequest({ threadId: 1 });
    await step;
    const prediction = (await scopeVariables(dc, 'Model')).find((v) => v.name === 'prediction (model)')!;
    expect(prediction.value).toMatch(/agrees with the program at every position|differs from the program at \d of 4 positions/);
    const rows2 = await children(dc, prediction.variablesReference);
    expect(rows2).toHaveLength(4);
    await dc.continueRequest({ threadId: 1 });
    await ended;
    expect(output.text('stdout')).toMatch(/^prediction: <bos> <bos> a b\nmodel prediction: (\S+ ){4}/);
  });

  it("maps the model's vocabulary onto the program's: the model prediction matches the reference forward pass", async () => {
    const input = '<bos> a c b c';
    const stop = nextEvent(dc, 'stopped');
    await launch(dc, { program: fixture('reordered.rasp'), model: modelDir, input, stopOnEntry: true });
    await stop;
    const prediction = (await scopeVariables(dc, 'Model')).find((v) => v.name === 'prediction (model)')!;
    const shown = (await children(dc, prediction.variablesReference)).map((r) => r.value.split(' ')[0]);
    // Expected: the independent float64 forward, argmax over the program's tokens only.
    const modelVocab = fixtureCard(SPEC).vocab;
    const programVocab = ['c', '<bos>', 'b', 'a'];
    const ids = input.split(' ').map((t) => modelVocab.indexOf(t));
    const logits = referenceLogits(config, weights, ids);
    const expected = ids.map((_, i) =>
      programVocab.reduce((best, tok) =>
        logits[i * config.vocabSize + modelVocab.indexOf(tok)] > logits[i * config.vocabSize + modelVocab.indexOf(best)] ? tok : best,
      ),
    );
    expect(shown).toEqual(expected);
  });

  it('fails the launch, naming the folder, when the model folder does not exist', async () => {
    const output = collectOutput(dc);
    await expect(dc.launch({ program: fixture('special.rasp'), model: join(root, 'missing-model') })).rejects.toThrow(/missing-model/);
    expect(output.text('stderr')).toMatch(/missing-model/);
  });
});
