// The model card `rasp-model.json`: what the project needs beyond the weights (task, objective, vocabulary,
// reported accuracies). Minimal by design; everything else about a task (layout, generator, oracle, scoring,
// length limits) is keyed by the task name in server/src/tasks, so the card stays declarative.
//
//   {
//     "format": "rasp-model", "version": 1,
//     "task": "sort", "objective": "ce",
//     "vocab": ["0", ..., "149", "<bos>", "<sep>", "<eos>", "<pad>"],
//     "special": { "bos": 150, "sep": 151, "eos": 152, "pad": 153 },     // written for readers; checked on load
//     "reportedAccuracy": [{ "lengths": [0, 50], "accuracy": 0.978 }, ...] // optional
//   }
//
// Without a card, the card is derived from the paper's folder naming (`sort-@1l1h256d3lr01drop` -> task sort) or
// from an explicit task; the vocabulary then comes from the task suite and the reported accuracies from acc.txt.
import type { SpecialIds } from '../program/types';
import { getTask, taskFromFolderName } from '../tasks/index';
import { UserError } from '../util/errors';
import type { Gpt2Config, ModelCard, Objective } from './types';

export const CARD_FILE = 'rasp-model.json';
export const CARD_FORMAT = 'rasp-model';
export const CARD_VERSION = 1;

const SPECIAL_NAMES: Record<string, keyof SpecialIds> = { '<bos>': 'bos', '<sep>': 'sep', '<eos>': 'eos', '<pad>': 'pad' };

/** Ids of the special tokens present in a vocabulary. */
export function specialIds(vocab: readonly string[]): SpecialIds {
  const out: SpecialIds = {};
  vocab.forEach((tok, i) => {
    const key = SPECIAL_NAMES[tok];
    if (key !== undefined && out[key] === undefined) out[key] = i;
  });
  return out;
}

/** Parses rasp-model.json text and checks it against the checkpoint's config. */
export function parseCard(text: string, file: string, config: Gpt2Config, warnings: string[] = []): ModelCard {
  const fail = (msg: string): never => {
    throw new UserError(msg, file);
  };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return fail(`not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('must be a JSON object');
  const c = raw as Record<string, unknown>;
  if (c.format !== undefined && c.format !== CARD_FORMAT) fail(`"format" must be "${CARD_FORMAT}", got ${JSON.stringify(c.format)}`);
  if (c.version !== undefined && c.version !== CARD_VERSION) {
    fail(`card version ${JSON.stringify(c.version)} is not supported (this build reads version ${CARD_VERSION})`);
  }
  if (typeof c.task !== 'string' || c.task.trim() === '') fail('"task" must be a non-empty string (a task name such as "sort")');
  if (c.objective !== 'ce' && c.objective !== 'bce') fail(`"objective" must be "ce" or "bce", got ${JSON.stringify(c.objective)}`);
  if (!Array.isArray(c.vocab) || !c.vocab.every((t) => typeof t === 'string' && t.length > 0)) {
    fail('"vocab" must be an array of non-empty token strings in id order');
  }
  const vocab = c.vocab as string[];
  const seen = new Set<string>();
  for (const t of vocab) {
    if (seen.has(t)) fail(`"vocab" lists the token ${JSON.stringify(t)} twice`);
    if (/\s/.test(t)) fail(`vocab token ${JSON.stringify(t)} contains whitespace (inputs are space-separated tokens)`);
    seen.add(t);
  }
  if (c.special !== undefined) {
    const derived = specialIds(vocab);
    if (typeof c.special !== 'object' || c.special === null) fail('"special" must be an object of token ids');
    for (const [k, v] of Object.entries(c.special as Record<string, unknown>)) {
      if (!['bos', 'sep', 'eos', 'pad'].includes(k)) fail(`"special" has an unknown key "${k}" (bos, sep, eos, pad)`);
      if (derived[k as keyof SpecialIds] !== v) {
        fail(`"special.${k}" is ${JSON.stringify(v)} but "<${k}>" is at index ${derived[k as keyof SpecialIds] ?? 'none'} of "vocab"`);
      }
    }
  }
  const card: ModelCard = { task: c.task as string, objective: c.objective as Objective, vocab, source: 'card' };
  if (c.reportedAccuracy !== undefined) card.reportedAccuracy = parseReported(c.reportedAccuracy, fail);
  checkCardAgainstConfig(card, config, file, warnings);
  return card;
}

function parseReported(v: unknown, fail: (msg: string) => never): NonNullable<ModelCard['reportedAccuracy']> {
  if (!Array.isArray(v)) return fail('"reportedAccuracy" must be an array of {lengths: [lo, hi], accuracy}');
  return v.map((e, i) => {
    const r = e as { lengths?: unknown; accuracy?: unknown };
    const l = r?.lengths;
    if (!Array.isArray(l) || l.length !== 2 || !l.every((x) => Number.isInteger(x) && x >= 0) || l[0] > l[1]) {
      fail(`"reportedAccuracy[${i}].lengths" must be [lo, hi] with 0 <= lo <= hi`);
    }
    if (typeof r.accuracy !== 'number' || !(r.accuracy >= 0 && r.accuracy <= 1)) fail(`"reportedAccuracy[${i}].accuracy" must be in [0, 1]`);
    const [lo, hi] = l as number[];
    return { lengths: [lo, hi] as [number, number], accuracy: r.accuracy as number };
  });
}

/** The card must fit the checkpoint: one token per embedding row, objective consistent with the architecture. */
export function checkCardAgainstConfig(card: ModelCard, config: Gpt2Config, file: string, warnings: string[]): void {
  if (card.vocab.length !== config.vocabSize) {
    throw new UserError(
      `the vocabulary has ${card.vocab.length} tokens (task ${card.task}) but config.json says vocab_size = ${config.vocabSize}`,
      file,
    );
  }
  if (config.architecture === 'GPT2BCELMHeadModel' && card.objective !== 'bce') {
    throw new UserError(`objective "${card.objective}" contradicts the architecture GPT2BCELMHeadModel (a per-token sigmoid model)`, file);
  }
  if (config.architecture === 'GPT2LMHeadModel' && card.objective === 'bce') {
    warnings.push(`${file}: objective "bce" with architecture GPT2LMHeadModel: decisions are read as logit > 0 per token`);
  }
  const sp = specialIds(card.vocab);
  const pairs: [string, number | undefined, number | undefined][] = [
    ['bos', config.bosId, sp.bos],
    ['eos', config.eosId, sp.eos],
    ['pad', config.padId, sp.pad],
  ];
  for (const [name, inConfig, inVocab] of pairs) {
    if (inConfig !== undefined && inVocab !== undefined && inConfig !== inVocab) {
      warnings.push(`${file}: config.json ${name}_token_id = ${inConfig} but "<${name}>" is token ${inVocab} of the vocabulary`);
    }
  }
}

/** The JSON written to rasp-model.json. */
export function cardToJson(card: ModelCard): Record<string, unknown> {
  const out: Record<string, unknown> = {
    format: CARD_FORMAT,
    version: CARD_VERSION,
    task: card.task,
    objective: card.objective,
    vocab: card.vocab,
    special: specialIds(card.vocab),
  };
  if (card.reportedAccuracy) out.reportedAccuracy = card.reportedAccuracy;
  return out;
}

/** A card for task `name` from the task suite (vocabulary and objective), checked against the config. */
export function cardForTask(name: string, source: ModelCard['source'], config: Gpt2Config, file: string, warnings: string[]): ModelCard {
  const task = getTask(name);
  const card: ModelCard = { task: task.name, objective: task.objective, vocab: [...task.vocab], source };
  checkCardAgainstConfig(card, config, file, warnings);
  return card;
}

/** Task named by a model folder in the paper's naming (`sort-@1l1h256d3lr01drop`), if any. */
export function taskFromFolder(dirName: string): string | undefined {
  return taskFromFolderName(dirName);
}

/** Reported accuracies from an acc.txt line (`eval_len0-50_acc: 0.978 ...`); empty when none are found. */
export function parseAccTxt(text: string): NonNullable<ModelCard['reportedAccuracy']> {
  const out: NonNullable<ModelCard['reportedAccuracy']> = [];
  for (const m of text.matchAll(/eval_len(\d+)-(\d+)_acc:\s*([\d.]+(?:e-?\d+)?)/g)) {
    const accuracy = Number(m[3]);
    if (Number.isFinite(accuracy) && accuracy >= 0 && accuracy <= 1) out.push({ lengths: [Number(m[1]), Number(m[2])], accuracy });
  }
  return out;
}
