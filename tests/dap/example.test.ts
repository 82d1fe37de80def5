// The shipped example: examples/dyck.rasp (a per-token sigmoid program) debugged next to the model the project
// trained on that task. The adapter's prediction lines must equal the interpreter's run and an independent
// float64 forward pass of the model.
import { resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import type { DebugClient } from '@vscode/debugadapter-testsupport';
import { loadProgramFile } from '../../server/src/language/load';
import { runProgram } from '../../server/src/interpreter/index';
import { loadModel } from '../../server/src/model/load';
import { referenceLogits } from '../../server/src/model/reference';
import { AdapterServer, collectOutput, launch, nextEvent, scopeVariables } from './harness';

const PROGRAM = resolve('examples/dyck.rasp');
const MODEL = resolve('examples/models/bce_D2-1l1h16d');
const INPUT = '<bos> a a b a b b';

const server = new AdapterServer();
let dc: DebugClient;

beforeAll(() => server.start());
afterAll(() => server.stop());
beforeEach(async () => {
  dc = await server.client();
});
afterEach(async () => {
  await dc.stop();
});

const asSet = (tokens: string[]): string => `{${tokens.join(' ')}}`;

it('debugs the Dyck program next to the trained model and reports both predictions', async () => {
  const program = await loadProgramFile(PROGRAM);
  const model = await loadModel(MODEL);
  const expectedProgram = runProgram(program, INPUT).prediction.map((d) => (Array.isArray(d) ? asSet(d) : d));
  const ids = INPUT.split(' ').map((t) => model.card.vocab.indexOf(t));
  const logits = referenceLogits(model.config, model.weights, ids);
  const V = model.config.vocabSize;
  // Per-token sigmoid decisions, listed in the program's vocabulary order.
  const expectedModel = ids.map((_, i) => asSet(program.header.vocab.filter((tok) => logits[i * V + model.card.vocab.indexOf(tok)] > 0)));

  const output = collectOutput(dc);
  const stop = nextEvent(dc, 'stopped');
  const predictionLine = program.statements[program.statements.length - 1].line;
  await launch(dc, { program: PROGRAM, model: MODEL, input: INPUT, breakpoints: [predictionLine] });
  await stop;
  const modelScope = await scopeVariables(dc, 'Model');
  expect(modelScope.map((v) => v.name.replace(' ≠', ''))).toEqual(['layer 0 head 0 (a1)', 'prediction (model)']);
  expect(modelScope[1].value.startsWith(`[${expectedModel.join(', ')}]`)).toBe(true);

  const ended = nextEvent(dc, 'terminated');
  await dc.continueRequest({ threadId: 1 });
  await ended;
  const lines = output.text('stdout').split('\n');
  expect(lines[0]).toBe(`prediction: ${expectedProgram.join(' ')}`);
  expect(lines[1].startsWith(`model prediction: ${expectedModel.join(' ')}`)).toBe(true);
});
