// The RASP debugger over real DAP (loopback TCP, DebugClient): breakpoints, stepping (over, into the rows of a
// select/aggregate, out), per-position values, selectors, evaluate, runtime errors, the prediction, restart.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DebugClient } from '@vscode/debugadapter-testsupport';
import type { DebugProtocol } from '@vscode/debugprotocol';
import {
  AdapterServer,
  children,
  collectOutput,
  fixture,
  launch,
  nextEvent,
  scopeVariables,
  scopes,
  stackFrames,
  variableAt,
} from './harness';

// previous.rasp: line 8 s1 = select(...), 9 a1 = aggregate(...), 11 logits1 = project(...), 12 prediction.
const PROGRAM = fixture('previous.rasp');
const S1 = 8;
const A1 = 9;
const LOGITS1 = 11;
const PREDICTION = 12;

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

async function stopped(): Promise<DebugProtocol.StoppedEvent> {
  return nextEvent<DebugProtocol.StoppedEvent>(dc, 'stopped');
}

async function topLine(): Promise<number> {
  return (await stackFrames(dc))[0].line;
}

async function evaluate(expression: string): Promise<DebugProtocol.EvaluateResponse['body']> {
  const frames = await stackFrames(dc);
  return (await dc.evaluateRequest({ expression, frameId: frames[0].id, context: 'watch' })).body;
}

describe('breakpoints', () => {
  it('verifies breakpoints, moves one on a blank line to the next statement, and stops there', async () => {
    const stop = stopped();
    const response = await launch(dc, { program: PROGRAM, breakpoints: [7, LOGITS1, 40] });
    const bps = response!.body.breakpoints;
    expect(bps.map((b) => [b.verified, b.line])).toEqual([
      [true, S1],
      [true, LOGITS1],
      [false, 40],
    ]);
    const event = await stop;
    expect(event.body.reason).toBe('breakpoint');
    expect(await topLine()).toBe(S1);
    const next = stopped();
    await dc.continueRequest({ threadId: 1 });
    expect((await next).body.reason).toBe('breakpoint');
    expect(await topLine()).toBe(LOGITS1);
  });

  it('stops at a conditional breakpoint only when its condition, written in the program notation, holds', async () => {
    const output = collectOutput(dc);
    const stop = stopped();
    await Promise.all([
      nextEvent(dc, 'initialized').then(async () => {
        await dc.setBreakpointsRequest({
          source: { path: PROGRAM },
          breakpoints: [
            { line: A1, condition: 's1[2][1] < 0' },
            { line: LOGITS1, condition: 'a1[2]["a"] == 1 && argmax(a1[3]) == "b"' },
            { line: PREDICTION, condition: 'no_such_name > 0' },
          ],
        });
        await dc.configurationDoneRequest();
      }),
      dc.launch({ program: PROGRAM, input: '<bos> a b c a' }),
    ]);
    // The condition on a1's line is false (s1 scores the previous key positively): no stop there.
    const first = await stop;
    expect(first.body).toMatchObject({ reason: 'breakpoint', description: 'condition a1[2]["a"] == 1 && argmax(a1[3]) == "b"' });
    expect(await topLine()).toBe(LOGITS1);
    const next = stopped();
    await dc.continueRequest({ threadId: 1 });
    const second = await next;
    expect(second.body.description).toMatch(/^breakpoint condition error: 'no_such_name' is not defined/);
    expect(await topLine()).toBe(PREDICTION);
    expect(output.text('stderr')).toMatch(/breakpoint condition: 'no_such_name' is not defined/);
  });

  it('moves a breakpoint on a matrix declaration between statements to the next statement', async () => {
    const stop = stopped();
    const response = await launch(dc, { program: fixture('matrix.rasp'), breakpoints: [9, 11, 8] });
    expect(response!.body.breakpoints.map((b) => [b.verified, b.line])).toEqual([
      [true, 14],
      [true, 14],
      [true, 8],
    ]);
    await stop;
    expect(await topLine()).toBe(8);
  });

  it('maps a continuation line to the statement it belongs to', async () => {
    const stop = stopped();
    const response = await launch(dc, { program: fixture('special.rasp'), breakpoints: [10] });
    expect(response!.body.breakpoints[0]).toMatchObject({ verified: true, line: 9 });
    await stop;
    expect(await topLine()).toBe(9);
  });
});

describe('values, selectors and stepping', () => {
  it('shows each variable per position, labelled by the input token, with top entries', async () => {
    const stop = stopped();
    await launch(dc, { program: PROGRAM, input: '<bos> a b c a', breakpoints: [LOGITS1] });
    await stop;
    const values = await scopeVariables(dc, 'Values');
    expect(values.map((v) => v.name)).toEqual(['token', 'pos', 'a1']);
    const a1 = values.find((v) => v.name === 'a1')!;
    const rows = await children(dc, a1.variablesReference);
    expect(rows.map((r) => r.name)).toEqual(['0: "<bos>"', '1: "a"', '2: "b"', '3: "c"', '4: "a"']);
    // a1 copies the previous token: at position 3 ("c") it holds "b".
    expect(rows[3].value).toBe('"b" 1');
    expect(rows[0].value).toBe('"<bos>" 1');
    const entries = await children(dc, rows[4].variablesReference);
    expect(entries.map((e) => [e.name, e.value])).toEqual([
      ['"a"', '0'],
      ['"b"', '0'],
      ['"c"', '1'],
      ['"<bos>"', '0'],
    ]);
    expect(entries[2].evaluateName).toBe('a1[4]["c"]');
  });

  it('shows selectors as query x key matrices expandable by query row, and attention weights', async () => {
    const stop = stopped();
    await launch(dc, { program: PROGRAM, input: '<bos> a b c a', breakpoints: [LOGITS1] });
    await stop;
    const selectors = await scopeVariables(dc, 'Selectors');
    expect(selectors.map((s) => s.name)).toEqual(['s1', 'attention(a1)']);
    const s1Rows = await children(dc, selectors[0].variablesReference);
    expect(s1Rows).toHaveLength(5);
    // Row 3 has keys 0..3 (causal); the key before the query scores highest.
    const keys = await children(dc, s1Rows[3].variablesReference);
    expect(keys.map((k) => k.name)).toEqual(['0: "<bos>"', '1: "a"', '2: "b"', '3: "c"']);
    const scores = keys.map((k) => Number(k.value));
    expect(scores.indexOf(Math.max(...scores))).toBe(2);
    const weights = await variableAt(dc, 'Selectors', ['attention(a1)', '3: "c"']);
    expect(weights.value).toBe('2: "b" 1');
  });

  it('steps over one statement at a time and reveals values as they are computed', async () => {
    const stop = stopped();
    await launch(dc, { program: PROGRAM, stopOnEntry: true });
    expect((await stop).body.reason).toBe('entry');
    expect(await topLine()).toBe(S1);
    expect((await scopeVariables(dc, 'Selectors')).map((v) => v.name)).toEqual([]);
    for (const line of [A1, LOGITS1, PREDICTION]) {
      const next = stopped();
      await dc.nextRequest({ threadId: 1 });
      expect((await next).body.reason).toBe('step');
      expect(await topLine()).toBe(line);
    }
    expect((await scopeVariables(dc, 'Values')).map((v) => v.name)).toEqual(['token', 'pos', 'a1', 'logits1']);
  });

  it('steps into the query rows of an aggregate one at a time and out of them', async () => {
    const stop = stopped();
    await launch(dc, { program: PROGRAM, input: '<bos> a b c a', breakpoints: [A1] });
    await stop;
    let step = stopped();
    await dc.stepInRequest({ threadId: 1 });
    await step;
    let frames = await stackFrames(dc);
    expect(frames.map((f) => [f.name, f.line])).toEqual([
      ['a1 row 0: "<bos>"', A1],
      ['a1 = aggregate (layer 0 head 0)', A1],
    ]);
    // Only row 0 of a1 is revealed so far.
    const a1 = (await scopeVariables(dc, 'Values')).find((v) => v.name === 'a1')!;
    expect(a1.value).toContain('rows 0..0 of 5');
    expect(await children(dc, a1.variablesReference)).toHaveLength(1);

    step = stopped();
    await dc.stepInRequest({ threadId: 1 });
    await step;
    step = stopped();
    await dc.nextRequest({ threadId: 1 });
    await step;
    frames = await stackFrames(dc);
    expect(frames[0].name).toBe('a1 row 2: "b"');
    const rowScope = (await scopes(dc, frames[0].id)).map((s) => s.name);
    expect(rowScope).toEqual(['Row 2: "b"', 'Values', 'Selectors']);
    const row = await scopeVariables(dc, 'Row 2: "b"');
    expect(row.map((v) => v.name)).toEqual(['query', 'scores s1', 'weights', 'a1']);
    expect(row.find((v) => v.name === 'weights')!.value).toBe('1: "a" 1');
    expect(row.find((v) => v.name === 'a1')!.value).toBe('"a" 1');

    step = stopped();
    await dc.stepOutRequest({ threadId: 1 });
    await step;
    frames = await stackFrames(dc);
    expect(frames).toHaveLength(1);
    expect(frames[0].line).toBe(LOGITS1);
    const full = (await scopeVariables(dc, 'Values')).find((v) => v.name === 'a1')!;
    expect(await children(dc, full.variablesReference)).toHaveLength(5);
  });

  it('steps into a select and through all its rows to the next statement', async () => {
    const stop = stopped();
    await launch(dc, { program: PROGRAM, input: '<bos> a b', stopOnEntry: true });
    await stop;
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) {
      const step = stopped();
      await dc.stepInRequest({ threadId: 1 });
      await step;
      seen.push((await stackFrames(dc))[0].name);
    }
    expect(seen).toEqual(['s1 row 0: "<bos>"', 's1 row 1: "a"', 's1 row 2: "b"', 'a1 = aggregate (layer 0 head 0)']);
  });
});

describe('evaluate', () => {
  it('evaluates names, indexing by position and by token, selector entries and arithmetic', async () => {
    const stop = stopped();
    await launch(dc, { program: PROGRAM, input: '<bos> a b c a', breakpoints: [LOGITS1] });
    await stop;
    expect((await evaluate('a1[3]["b"]')).result).toBe('1');
    expect((await evaluate('a1[3][1] + a1[4]["c"] * 2')).result).toBe('3');
    expect((await evaluate('a1[2]')).result).toBe('"a" 1');
    expect((await evaluate('s1[3][2] > s1[3][1]')).result).toBe('1');
    expect((await evaluate('argmax(a1[4])')).result).toBe('"c"');
    expect((await evaluate('sum(attention(a1)[4])')).result).toBe('1');
    // A column: one basis entry across positions, expandable.
    const column = await evaluate('a1["a"]');
    expect(column.variablesReference).toBeGreaterThan(0);
    const entries = await children(dc, column.variablesReference);
    expect(entries.map((e) => e.value)).toEqual(['0', '0', '1', '0', '0']);
    const whole = await evaluate('a1');
    expect(whole.result).toContain('token 5×4');
    expect(await children(dc, whole.variablesReference)).toHaveLength(5);
  });

  it('completes names defined at this point and functions in the debug console', async () => {
    const stop = stopped();
    await launch(dc, { program: PROGRAM, breakpoints: [LOGITS1] });
    await stop;
    const frames = await stackFrames(dc);
    const all = await dc.completionsRequest({ text: 'a1[0] + ', column: 9, frameId: frames[0].id });
    expect(all.body.targets.map((t) => t.label)).toEqual(expect.arrayContaining(['token', 'pos', 'a1', 's1', 'sum', 'argmax']));
    expect(all.body.targets.map((t) => t.label)).not.toContain('logits1');
    const some = await dc.completionsRequest({ text: 'sum(at', column: 7, frameId: frames[0].id });
    expect(some.body.targets).toEqual([{ label: 'attention', type: 'function', start: 5, length: 2 }]);
  });

  it('explains names that are not defined yet and bad indexes', async () => {
    const stop = stopped();
    await launch(dc, { program: PROGRAM, breakpoints: [A1] });
    await stop;
    const frames = await stackFrames(dc);
    await expect(dc.evaluateRequest({ expression: 'a1', frameId: frames[0].id, context: 'watch' })).rejects.toThrow(/'a1' is not defined at this point/);
    await expect(dc.evaluateRequest({ expression: 'token[1]["z"]', frameId: frames[0].id, context: 'watch' })).rejects.toThrow(/"z" is not a label/);
    await expect(dc.evaluateRequest({ expression: 's1[99]', frameId: frames[0].id, context: 'watch' })).rejects.toThrow(/out of range/);
    expect((await evaluate('token[1]["a"]')).result).toBe('1');
  });
});

describe('errors and the end of the program', () => {
  it('stops with a clear message when a token is not in the vocabulary', async () => {
    const output = collectOutput(dc);
    const stop = stopped();
    await launch(dc, { program: PROGRAM, input: '<bos> a z' });
    const event = await stop;
    expect(event.body.reason).toBe('exception');
    expect(event.body.text).toMatch(/z/);
    // The interpreter blames the first statement that reads `token`.
    expect(await topLine()).toBe(A1);
    const info = await dc.exceptionInfoRequest({ threadId: 1 });
    expect(info.body.description).toMatch(new RegExp(`previous\\.rasp:${A1} \\(a1\\): .*z`));
    expect(output.text('stderr')).toMatch(/z/);
    const ended = nextEvent(dc, 'terminated');
    await dc.continueRequest({ threadId: 1 });
    await ended;
  });

  it("stops at the statement that fails: an input longer than the program's positions, at the first reader of pos", async () => {
    const stop = stopped();
    await launch(dc, { program: PROGRAM, input: ['<bos>', ...Array<string>(16).fill('a')].join(' '), breakpoints: [LOGITS1] });
    const event = await stop;
    expect(event.body.reason).toBe('exception');
    expect(event.body.text).toMatch(/17 tokens/);
    expect(await topLine()).toBe(S1);
    const info = await dc.exceptionInfoRequest({ threadId: 1 });
    expect(info.body.description).toMatch(new RegExp(`previous\\.rasp:${S1} \\(s1\\): .*17 tokens`));
  });

  it('runs to the end and reports the prediction', async () => {
    const output = collectOutput(dc);
    const ended = nextEvent(dc, 'terminated');
    await launch(dc, { program: PROGRAM, input: '<bos> a b c a' });
    await ended;
    expect(output.text('stdout')).toBe('prediction: <bos> <bos> a b c\n');
  });

  it('uses the header example when no input is given, and pauses after the last statement', async () => {
    const stop = stopped();
    await launch(dc, { program: PROGRAM, breakpoints: [PREDICTION] });
    await stop;
    const step = stopped();
    await dc.nextRequest({ threadId: 1 });
    expect((await step).body.description).toBe('end of program');
    const frames = await stackFrames(dc);
    expect(frames[0].name).toBe('end of program');
    const prediction = await variableAt(dc, 'Values', ['prediction']);
    expect(prediction.value).toContain('[<bos>, <bos>, a, b, c]');
    const row = await variableAt(dc, 'Values', ['prediction', '4: "a"']);
    expect(row.value).toBe('c');
    expect((await evaluate('prediction[3]["b"] > 0.99')).result).toBe('1');
    const ended = nextEvent(dc, 'terminated');
    await dc.continueRequest({ threadId: 1 });
    await ended;
  });

  it('restarts from the beginning and stops at the same breakpoint', async () => {
    let stop = stopped();
    await launch(dc, { program: PROGRAM, breakpoints: [LOGITS1] });
    await stop;
    const step = stopped();
    await dc.nextRequest({ threadId: 1 });
    await step;
    expect(await topLine()).toBe(PREDICTION);
    stop = stopped();
    await dc.restartRequest({});
    expect((await stop).body.reason).toBe('breakpoint');
    expect(await topLine()).toBe(LOGITS1);
    expect((await scopeVariables(dc, 'Values')).map((v) => v.name)).toEqual(['token', 'pos', 'a1']);
  });

  it('re-reads the program on restart and moves breakpoints to where the statements now are', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rasp-dap-restart-'));
    try {
      const program = join(dir, 'edited.rasp');
      const original = await readFile(PROGRAM, 'utf8');
      await writeFile(program, original);
      let stop = stopped();
      const response = await launch(dc, { program, breakpoints: [LOGITS1] });
      expect(response!.body.breakpoints[0]).toMatchObject({ verified: true, line: LOGITS1 });
      await stop;
      // One line inserted above: line 11 is now the blank line before logits1, which moved to line 12.
      await writeFile(program, `# edited while paused\n${original}`);
      const changed = nextEvent<DebugProtocol.BreakpointEvent>(dc, 'breakpoint');
      stop = stopped();
      await dc.restartRequest({});
      expect((await changed).body).toMatchObject({ reason: 'changed', breakpoint: { verified: true, line: LOGITS1 + 1 } });
      expect((await stop).body.reason).toBe('breakpoint');
      expect(await topLine()).toBe(LOGITS1 + 1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails the launch with the loader message for a missing program', async () => {
    const output = collectOutput(dc);
    await expect(dc.launch({ program: fixture('missing.rasp') })).rejects.toThrow(/missing\.rasp/);
    expect(output.text('stderr')).toMatch(/missing\.rasp/);
  });

  it('pauses a long run between statements', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rasp-dap-pause-'));
    try {
      const { program, input, header, body } = await writeLongProgram(dir);
      const stop = stopped();
      await launch(dc, { program, input });
      await dc.pauseRequest({ threadId: 1 });
      expect((await stop).body.reason).toBe('pause');
      const line = await topLine();
      const next = body[line - header.length - 1];
      expect(next).toBeDefined();
      // Everything before the paused line has run, nothing after it.
      const ran = body.slice(0, line - header.length - 1).map((b) => b.split(' ')[0]);
      const shown = [...(await scopeVariables(dc, 'Values')), ...(await scopeVariables(dc, 'Selectors'))].map((v) => v.name);
      const expected = ran.flatMap((name) => (name.startsWith('a') ? [name, `attention(${name})`] : [name]));
      expect(shown.filter((v) => v !== 'token' && v !== 'pos').sort()).toEqual(expected.sort());
      const ended = nextEvent(dc, 'terminated');
      await dc.terminateRequest({});
      await ended;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('terminates a run in progress without further stops or a prediction', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rasp-dap-terminate-'));
    try {
      const { program, input } = await writeLongProgram(dir);
      const output = collectOutput(dc);
      const events: string[] = [];
      dc.on('stopped', () => events.push('stopped'));
      dc.on('terminated', () => events.push('terminated'));
      const ended = nextEvent(dc, 'terminated');
      await launch(dc, { program, input });
      await dc.terminateRequest({});
      await ended;
      // Long enough for the abandoned run to have finished, had it not stopped.
      await new Promise((r) => setTimeout(r, 1500));
      expect(events).toEqual(['terminated']);
      expect(output.text('stdout')).toBe('');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('terminates on request', async () => {
    const stop = stopped();
    await launch(dc, { program: PROGRAM, stopOnEntry: true });
    await stop;
    const ended = nextEvent(dc, 'terminated');
    await dc.terminateRequest({});
    await ended;
  });
});

/**
 * 20 select/aggregate pairs over 512 positions: each statement takes milliseconds and yields to the event loop,
 * so requests sent right after launch land mid-run.
 */
async function writeLongProgram(dir: string): Promise<{ program: string; input: string; header: string[]; body: string[] }> {
  const n = 512;
  const header = ['program "long"', 'vocab [a, b, <bos>]', `positions ${n}`, 'output softmax'];
  const body = Array.from({ length: 20 }, (_, i) => [`s${i + 1} = select(q=pos, k=pos, op=(k==q-1))`, `a${i + 1} = aggregate(s=s${i + 1}, v=token)`]).flat();
  const program = join(dir, 'long.rasp');
  await writeFile(program, [...header, ...body, 'logits1 = project(inp=a20, op=(inp==out))', 'prediction = softmax(logits1)', ''].join('\n'));
  return { program, input: ['<bos>', ...Array<string>(n - 1).fill('a')].join(' '), header, body };
}
