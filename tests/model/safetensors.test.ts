import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  parseSafetensors,
  parseSafetensorsFull,
  readSafetensorsFile,
  safetensorsBytes,
  writeSafetensorsFile,
} from '../../server/src/model/safetensors';
import type { Tensor } from '../../server/src/model/types';
import { UserError } from '../../server/src/util/errors';

/** Builds a file from an arbitrary header object (no validation: that is what is under test). */
function rawFile(header: unknown, data: Uint8Array, headerLenOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLenOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

function sample(): Map<string, Tensor> {
  return new Map<string, Tensor>([
    ['b.weight', { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) }],
    ['a.bias', { shape: [3], data: new Float32Array([-1.5, 0, 2.25]) }],
    ['scalar', { shape: [], data: new Float32Array([7]) }],
    ['empty', { shape: [0, 4], data: new Float32Array(0) }],
  ]);
}

/** The parser must either succeed or throw a UserError naming the file: never anything else. */
function parseOrUserError(bytes: Uint8Array): 'ok' | 'user-error' {
  try {
    parseSafetensors(bytes, 'fuzz.safetensors');
    return 'ok';
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    expect(err.message.startsWith('fuzz.safetensors: ')).toBe(true);
    return 'user-error';
  }
}

function expectUserError(bytes: Uint8Array, pattern: RegExp): void {
  let caught: unknown;
  try {
    parseSafetensors(bytes, 'x.safetensors');
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(UserError);
  expect((caught as Error).message).toMatch(/^x\.safetensors: /);
  expect((caught as Error).message).toMatch(pattern);
}

describe('safetensors writer', () => {
  it('writes alphabetical tensors, 8-byte aligned header, format metadata, and round-trips', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'st-'));
    const path = join(dir, 'w.safetensors');
    await writeSafetensorsFile(path, sample(), { note: 'hi' });
    const bytes = new Uint8Array(await readFile(path));
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLen % 8).toBe(0);
    const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + headerLen));
    const header = JSON.parse(headerText) as Record<string, { data_offsets: number[] }>;
    expect(header.__metadata__).toEqual({ format: 'pt', note: 'hi' });
    const names = Object.keys(header).filter((k) => k !== '__metadata__');
    expect(names).toEqual(['a.bias', 'b.weight', 'empty', 'scalar']);
    expect(header['a.bias'].data_offsets).toEqual([0, 12]);
    expect(headerText.endsWith(' ') || headerText.endsWith('}')).toBe(true);
    const back = await readSafetensorsFile(path);
    for (const [name, t] of sample()) {
      expect(back.get(name)?.shape).toEqual(t.shape);
      expect([...(back.get(name)?.data ?? [])]).toEqual([...t.data]);
    }
    // atomic write leaves no temp files behind
    expect(await readdir(dir)).toEqual(['w.safetensors']);
  });

  it('refuses tensors whose shape does not match their data', () => {
    const bad = new Map<string, Tensor>([['t', { shape: [2, 2], data: new Float32Array(3) }]]);
    expect(() => safetensorsBytes(bad)).toThrow(/shape \[2, 2\] does not match its 3 values/);
  });
});

describe('safetensors reader', () => {
  it('reads F16 and BF16 as float32', () => {
    // F16: 1.0 = 0x3c00, -2.0 = 0xc000, 65504 = 0x7bff, smallest subnormal 0x0001
    const f16 = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001]).buffer);
    // BF16: 1.0 = 0x3f80, -0.5 = 0xbf00
    const bf16 = new Uint8Array(new Uint16Array([0x3f80, 0xbf00]).buffer);
    const data = new Uint8Array([...f16, ...bf16]);
    const file = rawFile(
      { h: { dtype: 'F16', shape: [4], data_offsets: [0, 8] }, b: { dtype: 'BF16', shape: [2], data_offsets: [8, 12] } },
      data,
    );
    const out = parseSafetensorsFull(file, 'x');
    expect([...(out.tensors.get('h')?.data ?? [])]).toEqual([1, -2, 65504, 2 ** -24]);
    expect([...(out.tensors.get('b')?.data ?? [])]).toEqual([1, -0.5]);
    expect(out.dtypes.get('h')).toBe('F16');
  });

  it('names the problem for each kind of malformed file', () => {
    const ok = { t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
    const d = f32Bytes([1, 2]);
    expectUserError(new Uint8Array(5), /only 5 bytes/);
    expectUserError(rawFile(ok, d, 10n ** 9n), /exceeds the 100000000-byte limit/);
    expectUserError(rawFile(ok, d, 2n ** 64n - 1n), /exceeds/);
    expectUserError(rawFile(ok, d, 10_000n), /runs past the end of the file/);
    expectUserError(rawFile([1, 2], new Uint8Array(0)), /must be a JSON object/);
    expectUserError(rawFile({ t: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)), /dtype F64 is not supported/);
    expectUserError(rawFile({ t: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)), /dtype I64/);
    expectUserError(rawFile({ t: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, d), /needs 12 bytes but data_offsets \[0, 8\] span 8/);
    expectUserError(rawFile({ t: { dtype: 'F32', shape: [2], data_offsets: [0, 16] } }, d), /run past the data section/);
    expectUserError(rawFile({ t: { dtype: 'F32', shape: [-1], data_offsets: [0, 8] } }, d), /not a non-negative integer/);
    expectUserError(rawFile({ t: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, d), /before begin/);
    expectUserError(
      rawFile(
        { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } },
        d,
      ),
      /overlap/,
    );
    expectUserError(rawFile({ t: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, d), /unused bytes 0\.\.4/);
    expectUserError(rawFile({ t: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, d), /cover only 4/);
    expectUserError(rawFile({ __metadata__: { a: 1 } }, new Uint8Array(0)), /__metadata__ value of "a" must be a string/);
    expectUserError(rawFile({ t: { dtype: 'F32', shape: [2] } }, d), /data_offsets must be \[begin, end\]/);
    expectUserError(rawFile({ t: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 8] } }, d), /too large/);
    const badJson = new TextEncoder().encode('{"t": ');
    const f = new Uint8Array(8 + badJson.length);
    new DataView(f.buffer).setBigUint64(0, BigInt(badJson.length), true);
    f.set(badJson, 8);
    expectUserError(f, /not valid JSON/);
    const badUtf8 = new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe]);
    expectUserError(badUtf8, /not valid UTF-8/);
  });

  it('reports NaN/Inf weights as an error, or as warnings when allowed', () => {
    const file = rawFile({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 12] } }, f32Bytes([1, NaN, Infinity]));
    expectUserError(file, /tensor "w" has 2 NaN\/Inf value\(s\) \(first at flat index 1\)/);
    const out = parseSafetensorsFull(file, 'x', { allowNonFinite: true });
    expect(out.warnings).toEqual(['x: tensor "w" has 2 NaN/Inf value(s) (first at flat index 1)']);
  });

  it('refuses files over the size limit before reading them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'st-'));
    const path = join(dir, 'big.safetensors');
    await writeFile(path, new Uint8Array(4096));
    await expect(readSafetensorsFile(path, { maxFileBytes: 1000 })).rejects.toThrow(/big\.safetensors: .*over the 1000-byte limit/);
    await expect(readSafetensorsFile(join(dir, 'missing.safetensors'))).rejects.toThrow(/missing\.safetensors: cannot read: ENOENT/);
  });
});

describe('safetensors fuzzing', () => {
  const valid = safetensorsBytes(sample());

  it('every truncation of a valid file is a clear error', () => {
    for (let n = 0; n < valid.length; n++) expect(parseOrUserError(valid.subarray(0, n))).toBe('user-error');
    expect(parseOrUserError(valid)).toBe('ok');
  });

  it('random bytes never crash the parser', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        parseOrUserError(bytes);
      }),
      { numRuns: 500 },
    );
  });

  it('mutated files (byte flips anywhere, incl. the header) never crash', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        (edits) => {
          const bytes = valid.slice();
          for (const [i, b] of edits) bytes[i] = b;
          parseOrUserError(bytes);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('random headers (any dtype, shape, offsets, extra keys) are parsed consistently or refused', () => {
    const jsonish = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
    const entry = fc.record(
      {
        dtype: fc.oneof(fc.constantFrom('F32', 'F16', 'BF16', 'F64', 'I8', 'U8', 'bool', ''), jsonish),
        shape: fc.oneof(fc.array(fc.integer({ min: -2, max: 6 }), { maxLength: 3 }), jsonish),
        data_offsets: fc.oneof(fc.tuple(fc.integer({ min: -4, max: 64 }), fc.integer({ min: -4, max: 64 })), fc.array(fc.nat(64)), jsonish),
      },
      { requiredKeys: [] },
    );
    const header = fc.dictionary(fc.oneof(fc.constantFrom('a', 'b', '__metadata__', ''), fc.string()), fc.oneof(entry, jsonish), {
      maxKeys: 4,
    });
    fc.assert(
      fc.property(header, fc.uint8Array({ maxLength: 64 }), (h, data) => {
        const file = rawFile(h, data);
        if (parseOrUserError(file) === 'ok') {
          // whatever was accepted is internally consistent
          const t = parseSafetensors(file, 'fuzz.safetensors');
          let total = 0;
          for (const x of t.values()) {
            expect(x.data.length).toBe(x.shape.reduce((a, b) => a * b, 1));
            total += x.data.length;
          }
          expect(total).toBeLessThanOrEqual(data.length);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
