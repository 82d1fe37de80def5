import { describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseGpt2Config } from '../../server/src/model/config';
import { loadModel, saveModel } from '../../server/src/model/load';
import { readSafetensorsFile, writeSafetensorsFile } from '../../server/src/model/safetensors';
import { tensorsFromWeights } from '../../server/src/model/weights';
import { UserError } from '../../server/src/util/errors';
import { fixtureCard, fixtureConfig, fixtureWeights, writeFixture, type FixtureSpec } from '../fixtures/models';

const SPEC: FixtureSpec = { layers: 2, heads: 2, width: 8, symbols: ['a', 'b', 'c'], positions: 20, seed: 2 };

async function configJson(dir: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
}

async function editConfig(dir: string, edit: (c: Record<string, unknown>) => void): Promise<void> {
  const c = await configJson(dir);
  edit(c);
  await writeFile(join(dir, 'config.json'), JSON.stringify(c));
}

async function loadError(dir: string, options = {}): Promise<string> {
  try {
    await loadModel(dir, options);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error('expected loadModel to fail');
}

describe('saveModel / loadModel', () => {
  it('round-trips a checkpoint with the standard HF files, card and weights hash', async () => {
    const dir = await writeFixture(SPEC);
    expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors', 'rasp-model.json']);
    const cfg = await configJson(dir);
    expect(cfg).toMatchObject({
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      activation_function: 'gelu_new',
      n_layer: 2,
      n_head: 2,
      n_embd: 8,
      n_positions: 20,
      vocab_size: 7,
      n_inner: null,
      layer_norm_epsilon: 1e-5,
      bos_token_id: 3,
      eos_token_id: 5,
      pad_token_id: 6,
    });
    const card = JSON.parse(await readFile(join(dir, 'rasp-model.json'), 'utf8')) as Record<string, unknown>;
    expect(card).toMatchObject({ format: 'rasp-model', task: 'fixture', objective: 'ce', special: { bos: 3, sep: 4, eos: 5, pad: 6 } });
    const model = await loadModel(dir);
    expect(model.config).toEqual(fixtureConfig(SPEC));
    expect(model.card).toEqual({ ...fixtureCard(SPEC), source: 'card' });
    expect(Array.from(model.weights.blocks[1].mlp.projW.data)).toEqual(Array.from(fixtureWeights(SPEC).blocks[1].mlp.projW.data));
    const bytes = await readFile(join(dir, 'model.safetensors'));
    expect(model.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    // the weights file holds exactly the HF names, alphabetically, no lm_head (tied)
    const names = [...(await readSafetensorsFile(join(dir, 'model.safetensors'))).keys()];
    expect(names).toEqual([...names].sort());
    expect(names).toHaveLength(4 + 12 * 2);
    expect(names).not.toContain('lm_head.weight');
  });

  it('refuses to overwrite an existing checkpoint without force', async () => {
    const dir = await writeFixture(SPEC);
    const err = await saveModel(dir, fixtureConfig(SPEC), fixtureWeights(SPEC), fixtureCard(SPEC)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/already holds model\.safetensors, config\.json, rasp-model\.json; use --force to overwrite/);
    await saveModel(dir, fixtureConfig(SPEC), fixtureWeights({ ...SPEC, seed: 7 }), fixtureCard(SPEC), { force: true });
    expect((await loadModel(dir)).weights.wte.data[0]).toBe(fixtureWeights({ ...SPEC, seed: 7 }).wte.data[0]);
  });

  it('refuses a card whose vocabulary does not fit the weights before writing anything', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'rasp-model-')), 'm');
    const card = { ...fixtureCard(SPEC), vocab: ['a', '<bos>'] };
    await expect(saveModel(dir, fixtureConfig(SPEC), fixtureWeights(SPEC), card)).rejects.toThrow(/vocabulary has 2 tokens .* vocab_size = 7/);
    await expect(readdir(dir)).rejects.toThrow();
  });

  it('derives the card from the folder name, with reported accuracies from acc.txt', async () => {
    const spec: FixtureSpec = { layers: 1, heads: 1, width: 8, symbols: ['0', '1'], positions: 154, seed: 4 };
    const src = await writeFixture(spec);
    const dir = join(src, '..', 'bin_majority-@1l1h8d3lr01drop');
    await rename(src, dir);
    await rm(join(dir, 'rasp-model.json'));
    await writeFile(join(dir, 'acc.txt'), 'gpt2  eval_len0-50_acc: 1.0  eval_len51-100_acc: 0.995  eval_len101-150_acc: 0.9165\n');
    const model = await loadModel(dir);
    expect(model.card).toEqual({
      task: 'bin_majority',
      objective: 'ce',
      vocab: ['0', '1', '<bos>', '<sep>', '<eos>', '<pad>'],
      source: 'folder-name',
      reportedAccuracy: [
        { lengths: [0, 50], accuracy: 1 },
        { lengths: [51, 100], accuracy: 0.995 },
        { lengths: [101, 150], accuracy: 0.9165 },
      ],
    });
    // --task on a card-less folder wins over the name, and is checked against the weights
    expect((await loadModel(dir, { task: 'parity' })).card).toMatchObject({ task: 'parity', source: 'option' });
    expect(await loadError(dir, { task: 'sort' })).toMatch(/vocabulary has 154 tokens \(task sort\) but config\.json says vocab_size = 6/);
    expect(await loadError(dir, { task: 'nope' })).toMatch(/unknown task "nope"; known tasks: /);
  });

  it('asks for --task when there is no card and the folder name names no task', async () => {
    const dir = await writeFixture(SPEC, 'my-model');
    await rm(join(dir, 'rasp-model.json'));
    expect(await loadError(dir)).toMatch(/my-model: no rasp-model\.json, and the folder name does not name a task .* --task NAME/);
  });

  it('warns when config.json special ids disagree with the vocabulary, and refuses an unsupported config', async () => {
    const dir = await writeFixture(SPEC);
    await editConfig(dir, (c) => (c.eos_token_id = 0));
    const model = await loadModel(dir);
    expect(model.warnings).toEqual([`${join(dir, 'rasp-model.json')}: config.json eos_token_id = 0 but "<eos>" is token 5 of the vocabulary`]);
    await editConfig(dir, (c) => (c.architectures = ['GPT2ForSequenceClassification']));
    expect(await loadError(dir)).toMatch(/config\.json: architecture \["GPT2ForSequenceClassification"\] is not supported/);
  });

  it('a card contradicting --task is an error', async () => {
    const dir = await writeFixture(SPEC);
    expect(await loadError(dir, { task: 'sort' })).toMatch(/rasp-model\.json: the model card names task "fixture" but --task is "sort"/);
  });

  it('checks the card file', async () => {
    const dir = await writeFixture(SPEC);
    const cardPath = join(dir, 'rasp-model.json');
    const card = JSON.parse(await readFile(cardPath, 'utf8')) as Record<string, unknown>;
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...card, objective: 'mse' }, /"objective" must be "ce" or "bce"/],
      [{ ...card, vocab: ['a', 'a', 'c', '<bos>', '<sep>', '<eos>', '<pad>'] }, /lists the token "a" twice/],
      [{ ...card, special: { bos: 0 } }, /"special\.bos" is 0 but "<bos>" is at index 3/],
      [{ ...card, version: 9 }, /card version 9 is not supported/],
      [{ ...card, reportedAccuracy: [{ lengths: [5, 1], accuracy: 1 }] }, /reportedAccuracy\[0\]\.lengths/],
    ];
    for (const [c, re] of cases) {
      await writeFile(cardPath, JSON.stringify(c));
      const msg = await loadError(dir);
      expect(msg).toContain(cardPath);
      expect(msg).toMatch(re);
    }
    await writeFile(cardPath, '{"task": ');
    expect(await loadError(dir)).toMatch(/rasp-model\.json: not valid JSON/);
  });

  it('a BCE architecture needs a bce card', async () => {
    const spec: FixtureSpec = { ...SPEC, bce: true };
    const dir = join(await mkdtemp(join(tmpdir(), 'rasp-model-')), 'm');
    await expect(saveModel(dir, fixtureConfig(spec), fixtureWeights(spec), { ...fixtureCard(spec), objective: 'ce' })).rejects.toThrow(
      /objective "ce" contradicts the architecture GPT2BCELMHeadModel/,
    );
  });
});

describe('config.json checks', () => {
  const base = (): Record<string, unknown> => ({
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    activation_function: 'gelu_new',
    n_layer: 1,
    n_head: 2,
    n_embd: 8,
    n_positions: 10,
    vocab_size: 6,
    n_inner: null,
  });
  const cases: [string, (c: Record<string, unknown>) => void, RegExp][] = [
    ['architecture', (c) => (c.architectures = ['LlamaForCausalLM']), /architecture \["LlamaForCausalLM"\] is not supported; accepted: GPT2LMHeadModel, GPT2BCELMHeadModel/],
    ['no architectures', (c) => delete c.architectures, /missing "architectures"/],
    ['model type', (c) => (c.model_type = 'llama'), /model_type "llama" is not supported/],
    ['activation', (c) => (c.activation_function = 'gelu'), /activation_function "gelu" is not supported: .* gelu_new/],
    ['n_inner', (c) => (c.n_inner = 16), /n_inner 16 is not supported: the MLP width must be 4 \* n_embd = 32/],
    ['heads', (c) => (c.n_head = 3), /n_embd 8 is not divisible by n_head 3/],
    ['missing', (c) => delete c.n_layer, /missing "n_layer"/],
    ['not integer', (c) => (c.vocab_size = 6.5), /"vocab_size" must be an integer/],
    ['bad token id', (c) => (c.bos_token_id = 6), /"bos_token_id" must be a token id in 0\.\.5/],
    ['untied', (c) => (c.tie_word_embeddings = false), /tie_word_embeddings = false is not supported/],
    ['scaling', (c) => (c.scale_attn_by_inverse_layer_idx = true), /scale_attn_by_inverse_layer_idx = true is not supported/],
  ];
  for (const [what, edit, re] of cases) {
    it(`refuses: ${what}`, () => {
      const c = base();
      edit(c);
      expect(() => parseGpt2Config(JSON.stringify(c), 'm/config.json')).toThrow(UserError);
      expect(() => parseGpt2Config(JSON.stringify(c), 'm/config.json')).toThrow(re);
    });
  }
  it('accepts both architectures, n_inner 4d and HF defaults', () => {
    const c = { ...base(), architectures: ['GPT2BCELMHeadModel'], n_inner: 32 };
    delete (c as Record<string, unknown>).activation_function;
    expect(parseGpt2Config(JSON.stringify(c), 'x')).toMatchObject({ architecture: 'GPT2BCELMHeadModel', activation: 'gelu_new', lnEps: 1e-5 });
  });
  it('names the file on bad JSON', () => {
    expect(() => parseGpt2Config('{', 'm/config.json')).toThrow(/^m\/config\.json: not valid JSON/);
  });
});

/** A BF16 safetensors file of the given F32 tensors (bfloat16 = the top 16 bits of a float32). */
function bf16File(tensors: Map<string, { shape: number[]; data: Float32Array }>): Uint8Array {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const n of names) {
    const t = tensors.get(n)!;
    header[n] = { dtype: 'BF16', shape: t.shape, data_offsets: [off, off + 2 * t.data.length] };
    off += 2 * t.data.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + off);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let p = 8 + json.length;
  for (const n of names) {
    const bits = new Uint32Array(tensors.get(n)!.data.buffer.slice(0));
    for (const b of bits) {
      dv.setUint16(p, b >>> 16, true);
      p += 2;
    }
  }
  return out;
}

describe('checkpoint folder checks', () => {
  it('loads BF16 weights as float32 and says so', async () => {
    const dir = await writeFixture(SPEC);
    const tensors = tensorsFromWeights(fixtureConfig(SPEC), fixtureWeights(SPEC));
    await writeFile(join(dir, 'model.safetensors'), bf16File(tensors));
    const model = await loadModel(dir);
    expect(model.warnings).toEqual([`${join(dir, 'model.safetensors')}: 28 tensor(s) stored as BF16 were converted to float32`]);
    const orig = fixtureWeights(SPEC).wte.data;
    const truncated = new Float32Array(new Uint32Array(new Uint32Array(orig.buffer.slice(0)).map((b) => b & 0xffff0000)).buffer);
    expect(Array.from(model.weights.wte.data)).toEqual(Array.from(truncated));
  });

  it('refuses pickled checkpoints and says why', async () => {
    const dir = await writeFixture(SPEC);
    await rm(join(dir, 'model.safetensors'));
    await writeFile(join(dir, 'pytorch_model.bin'), 'not really a pickle');
    await writeFile(join(dir, 'training_args.bin'), 'x');
    const msg = await loadError(dir);
    expect(msg).toMatch(/has no model\.safetensors, only pytorch_model\.bin: refusing to load a pickled checkpoint: .*arbitrary code/);
    expect(msg).not.toContain('training_args.bin');
    expect(await loadError(join(dir, 'pytorch_model.bin'))).toMatch(/pytorch_model\.bin: refusing to load a pickled checkpoint/);
    await rm(join(dir, 'pytorch_model.bin'));
    expect(await loadError(dir)).toMatch(/no model\.safetensors in the model folder/);
  });

  it('names missing folders and files', async () => {
    expect(await loadError('/nonexistent/model')).toMatch(/\/nonexistent\/model: model folder not found/);
    const empty = await mkdtemp(join(tmpdir(), 'rasp-model-'));
    expect(await loadError(empty)).toMatch(/no config\.json in .*: not a Hugging Face GPT-2 checkpoint folder/);
  });

  it('checks tensor names and shapes against the config', async () => {
    const dir = await writeFixture(SPEC);
    const config = fixtureConfig(SPEC);
    const weightsPath = join(dir, 'model.safetensors');
    const tensors = tensorsFromWeights(config, fixtureWeights(SPEC));
    // Tied lm_head copy and old attention-mask buffers are tolerated.
    const withExtras = new Map(tensors);
    withExtras.set('lm_head.weight', tensors.get('transformer.wte.weight')!);
    withExtras.set('transformer.h.0.attn.bias', { shape: [1, 1, 20, 20], data: new Float32Array(400) });
    await writeSafetensorsFile(weightsPath, withExtras);
    await expect(loadModel(dir)).resolves.toBeTruthy();

    const untied = new Map(tensors);
    untied.set('lm_head.weight', { shape: [7, 8], data: new Float32Array(56) });
    await writeSafetensorsFile(weightsPath, untied);
    expect(await loadError(dir)).toMatch(/lm_head\.weight differs from transformer\.wte\.weight: untied/);

    const extraLayer = new Map(tensors);
    extraLayer.set('transformer.h.2.ln_1.weight', { shape: [8], data: new Float32Array(8) });
    await writeSafetensorsFile(weightsPath, extraLayer);
    expect(await loadError(dir)).toMatch(/unexpected tensor "transformer\.h\.2\.ln_1\.weight" \(config\.json says n_layer = 2\)/);

    const wrongShape = new Map(tensors);
    wrongShape.set('transformer.wpe.weight', { shape: [10, 8], data: new Float32Array(80) });
    await writeSafetensorsFile(weightsPath, wrongShape);
    expect(await loadError(dir)).toMatch(/model\.safetensors: tensor "transformer\.wpe\.weight" has shape \[10, 8\], but config\.json implies \[20, 8\]/);

    const missing = new Map(tensors);
    missing.delete('transformer.h.1.mlp.c_fc.bias');
    await writeSafetensorsFile(weightsPath, missing);
    expect(await loadError(dir)).toMatch(/missing 1 tensor\(s\) for a 2-layer GPT-2: transformer\.h\.1\.mlp\.c_fc\.bias/);

    const nan = new Map(tensors);
    const fc = new Float32Array(tensors.get('transformer.h.0.mlp.c_fc.weight')!.data);
    fc[5] = NaN;
    nan.set('transformer.h.0.mlp.c_fc.weight', { shape: [8, 32], data: fc });
    await writeSafetensorsFile(weightsPath, nan);
    expect(await loadError(dir)).toMatch(/model\.safetensors: tensor "transformer\.h\.0\.mlp\.c_fc\.weight" has 1 NaN\/Inf value\(s\) \(first at flat index 5\)/);

    await writeFile(weightsPath, new Uint8Array(3));
    expect(await loadError(dir)).toMatch(/model\.safetensors: not a valid safetensors file: file is only 3 bytes/);
  });
});
