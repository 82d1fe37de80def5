// The extension's settings in one typed read (see contributes.configuration in package.json).
import * as vscode from 'vscode';
import type { Backend } from './workers/protocol';

export interface Settings {
  backend: Backend;
  seed: number;
  samplesPerBin: number;
  extractSamples: number;
  extractSteps: number;
  targetMatch: number;
  extractRuns: number;
  trainSteps: number;
}

export function settings(): Settings {
  const c = vscode.workspace.getConfiguration('rasp');
  return {
    backend: c.get<Backend>('backend', 'wasm'),
    seed: c.get<number>('seed', 0),
    samplesPerBin: c.get<number>('check.samplesPerBin', 200),
    extractSamples: c.get<number>('extract.samples', 0),
    extractSteps: c.get<number>('extract.steps', 0),
    targetMatch: c.get<number>('extract.targetMatch', 0.9),
    extractRuns: c.get<number>('extract.runs', 0),
    trainSteps: c.get<number>('train.steps', 0),
  };
}
