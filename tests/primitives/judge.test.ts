// modelJudge over a small seeded GPT-2 (written and loaded through the model's real reader): screening and
// confirmation sets, the model's decisions as the reference, and the early stop under `atLeast`.
import { describe, expect, it } from 'vitest';
import { modelJudge, screeningInputs } from '../../server/src/decompile/primitives/index';
import { INP_IS_OUT } from '../../server/src/decompile/primitives/library';
import { runBatch } from '../../server/src/interpreter/index';
import { modelLogits } from '../../server/src/model/forward';
import type { Program } from '../../server/src/program/types';
import { sampleBins, sequenceMatches } from '../../server/src/tasks/index';
import { tinyBinMajorityModel } from './helpers';

describe('modelJudge', () => {
  it('scores programs against the model decisions, and stops early only below atLeast', async () => {
    const { model, task } = await tinyBinMajorityModel(3);
    const bins: [number, number][] = [
      [1, 10],
      [11, 20],
    ];
    const judge = await modelJudge(model, task, { bins, screenPerBin: 12, checkPerBin: 10, seed: 5 });
    expect(judge.inputs).toHaveLength(24);
    // the same sequences without the model (primitivesStage's head dims on a program it leaves alone)
    expect(screeningInputs(task, { bins, screenPerBin: 12, seed: 5 })).toEqual(judge.inputs);
    // interleaved bins: short and long sequences alternate
    expect(judge.inputs[0].length).toBeLessThan(judge.inputs[1].length);
    const program: Program = {
      header: { vocab: [...task.vocab], special: task.special, positions: task.nPositions, output: 'softmax', dHead: 8 },
      statements: [
        { kind: 'aggregate', name: 'a1', line: 0, selectors: [], v: 'token' },
        { kind: 'project', name: 'logits1', line: 0, inp: 'a1', op: INP_IS_OUT },
        { kind: 'prediction', name: 'prediction', line: 0, fn: 'softmax', terms: ['logits1'] },
      ],
      matrices: new Map(),
      mlps: new Map(),
    };
    // reference: the model's own decisions on the screening sequences, computed here independently
    const logits = await modelLogits(model, judge.inputs);
    const runs = runBatch(program, judge.inputs);
    const expected = runs.filter((r, i) => sequenceMatches(task, judge.inputs[i], r.logits, logits[i])).length / judge.inputs.length;
    const full = await judge.evaluate(program);
    expect(full).toBeCloseTo(expected, 12);
    expect(await judge.evaluate(program, { atLeast: 0 })).toBeCloseTo(expected, 12);
    if (expected < 1) expect(await judge.evaluate(program, { atLeast: expected + 1e-6 })).toBeLessThan(expected + 1e-6);
    // the check set is `rasp check`'s: sampleBins(task, bins, perBin, seed)
    const checkSeqs = sampleBins(task, bins, 10, 5).flat();
    const checkLogits = await modelLogits(model, checkSeqs);
    const checkRuns = runBatch(program, checkSeqs);
    const expectedCheck = checkRuns.filter((r, i) => sequenceMatches(task, checkSeqs[i], r.logits, checkLogits[i])).length / checkSeqs.length;
    expect(await judge.confirm(program)).toBeCloseTo(expectedCheck, 12);
  });
});
