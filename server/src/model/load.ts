// Loading and saving model folders: config.json + model.safetensors + rasp-model.json (the standard Hugging Face
// layout plus our card). Pickled checkpoints (.bin/.pt/...) are refused, never opened.
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { UserError } from '../util/errors';
import { writeFileAtomic } from './atomic';
import { CARD_FILE, cardForTask, cardToJson, checkCardAgainstConfig, parseAccTxt, parseCard, taskFromFolder } from './card';
import { configToJson, parseGpt2Config } from './config';
import { DEFAULT_MAX_FILE_BYTES, parseSafetensorsFull, serializeSafetensors } from './safetensors';
import type { Gpt2Config, Gpt2Weights, LoadedModel, ModelCard } from './types';
import { tensorsFromWeights, weightsFromTensors } from './weights';

export const WEIGHTS_FILE = 'model.safetensors';
export const CONFIG_FILE = 'config.json';

const PICKLE_EXTENSIONS = new Set(['.bin', '.pt', '.pth', '.ckpt', '.pkl', '.pickle']);
const PICKLE_WHY =
  'pickled PyTorch files can run arbitrary code when they are loaded, so they are never opened; ' +
  'convert the checkpoint to safetensors first (in Python: model.save_pretrained(dir, safe_serialization=True))';

export interface LoadModelOptions {
  /** Task name to use when the folder has no rasp-model.json (overrides the folder-name guess). */
  task?: string;
}

/** Loads a model folder (or the path of its model.safetensors). Throws UserError naming the file and problem. */
export async function loadModel(path: string, options: LoadModelOptions = {}): Promise<LoadedModel> {
  const dir = await modelDir(path);
  const warnings: string[] = [];
  const configPath = join(dir, CONFIG_FILE);
  const configText = await readText(configPath, `no ${CONFIG_FILE} in ${dir}: not a Hugging Face GPT-2 checkpoint folder`);
  const config = parseGpt2Config(configText, configPath);

  const weightsPath = join(dir, WEIGHTS_FILE);
  const bytes = await readWeightsBytes(dir, weightsPath);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const contents = parseSafetensorsFull(bytes, weightsPath);
  const nonF32 = [...contents.dtypes.entries()].filter(([, d]) => d !== 'F32');
  if (nonF32.length > 0) warnings.push(`${weightsPath}: ${nonF32.length} tensor(s) stored as ${nonF32[0][1]} were converted to float32`);
  const weights = weightsFromTensors(config, contents.tensors, weightsPath);

  const card = await loadCard(dir, config, options, warnings);
  const model: LoadedModel = { dir, config, weights, card, sha256 };
  if (warnings.length > 0) model.warnings = warnings;
  return model;
}

async function modelDir(path: string): Promise<string> {
  const abs = resolve(path);
  let st;
  try {
    st = await stat(abs);
  } catch {
    throw new UserError('model folder not found', abs);
  }
  if (st.isDirectory()) return abs;
  if (PICKLE_EXTENSIONS.has(extname(abs).toLowerCase())) throw new UserError(`refusing to load a pickled checkpoint: ${PICKLE_WHY}`, abs);
  if (basename(abs) === WEIGHTS_FILE || basename(abs) === CONFIG_FILE) return dirname(abs);
  throw new UserError('expected a model folder (config.json + model.safetensors)', abs);
}

async function readWeightsBytes(dir: string, weightsPath: string): Promise<Uint8Array> {
  let size: number | undefined;
  try {
    size = (await stat(weightsPath)).size;
  } catch {
    size = undefined;
  }
  if (size === undefined) {
    const files = await readdir(dir).catch(() => [] as string[]);
    if (files.includes(`${WEIGHTS_FILE}.index.json`)) {
      throw new UserError(`sharded checkpoints (${WEIGHTS_FILE}.index.json) are not supported; save the model as one ${WEIGHTS_FILE}`, dir);
    }
    // training_args.bin sits next to every HF training run; only weight files matter here.
    const pickled = files.filter((f) => PICKLE_EXTENSIONS.has(extname(f).toLowerCase()) && f !== 'training_args.bin');
    if (pickled.length > 0) {
      throw new UserError(`has no ${WEIGHTS_FILE}, only ${pickled.join(', ')}: refusing to load a pickled checkpoint: ${PICKLE_WHY}`, dir);
    }
    throw new UserError(`no ${WEIGHTS_FILE} in the model folder`, dir);
  }
  if (size > DEFAULT_MAX_FILE_BYTES) throw new UserError(`file is ${size} bytes, over the ${DEFAULT_MAX_FILE_BYTES}-byte limit`, weightsPath);
  return new Uint8Array(await readFile(weightsPath));
}

async function loadCard(dir: string, config: Gpt2Config, options: LoadModelOptions, warnings: string[]): Promise<ModelCard> {
  const cardPath = join(dir, CARD_FILE);
  const cardText = await readFile(cardPath, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new UserError(`cannot read: ${err.code ?? String(err)}`, cardPath);
  });
  if (cardText !== undefined) {
    const card = parseCard(cardText, cardPath, config, warnings);
    if (options.task !== undefined && options.task !== card.task) {
      throw new UserError(`the model card names task "${card.task}" but --task is "${options.task}"`, cardPath);
    }
    return card;
  }
  const configPath = join(dir, CONFIG_FILE);
  let card: ModelCard;
  if (options.task !== undefined) {
    card = cardForTask(options.task, 'option', config, configPath, warnings);
  } else {
    const fromName = taskFromFolder(basename(dir));
    if (fromName === undefined) {
      throw new UserError(
        `no ${CARD_FILE}, and the folder name does not name a task (as in sort-@1l1h256d3lr01drop); pass the task with --task NAME`,
        dir,
      );
    }
    card = cardForTask(fromName, 'folder-name', config, configPath, warnings);
  }
  const acc = await readFile(join(dir, 'acc.txt'), 'utf8').catch(() => undefined);
  const reported = acc === undefined ? [] : parseAccTxt(acc);
  if (reported.length > 0) card.reportedAccuracy = reported;
  return card;
}

async function readText(path: string, missing: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(missing);
    throw new UserError(`cannot read: ${code ?? String(err)}`, path);
  }
}

export interface SaveModelOptions {
  /** Replace an existing checkpoint in `dir` (default: refuse). */
  force?: boolean;
  /** Dropout recorded in config.json (training's value; 0 by default). */
  dropout?: number;
}

/**
 * Writes a standard checkpoint Hugging Face loads (config.json, model.safetensors) plus rasp-model.json. Each file
 * is written atomically; the weights go first and the card last, so a folder with a card is always complete.
 * Returns the sha256 of the weights file.
 */
export async function saveModel(
  dir: string,
  config: Gpt2Config,
  weights: Gpt2Weights,
  card: ModelCard,
  options: SaveModelOptions = {},
): Promise<string> {
  const abs = resolve(dir);
  const warnings: string[] = [];
  const cardPath = join(abs, CARD_FILE);
  // Validate everything before the first byte is written.
  checkCardAgainstConfig(card, config, cardPath, warnings);
  const chunks = serializeSafetensors(tensorsFromWeights(config, weights));
  if (!options.force) {
    const existing = await readdir(abs).catch(() => [] as string[]);
    const clash = [WEIGHTS_FILE, CONFIG_FILE, CARD_FILE].filter((f) => existing.includes(f));
    if (clash.length > 0) throw new UserError(`already holds ${clash.join(', ')}; use --force to overwrite`, abs);
  }
  const hash = createHash('sha256');
  for (const c of chunks) hash.update(c);
  await writeFileAtomic(join(abs, WEIGHTS_FILE), chunks);
  await writeFileAtomic(join(abs, CONFIG_FILE), jsonBytes(configToJson(config, { dropout: options.dropout })));
  await writeFileAtomic(cardPath, jsonBytes(cardToJson(card)));
  return hash.digest('hex');
}

function jsonBytes(v: unknown): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(v, null, 2)}\n`);
}
