// safetensors reader and writer (https://github.com/huggingface/safetensors format), written for hostile input.
//
// Layout: 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON
// `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: { string: string } }`, then the data
// section; offsets are relative to its start. Every check below turns a malformed file into a UserError naming the
// file and the problem; nothing is trusted before it is bounds-checked, so a bad file cannot crash or hang us.
//
// Decisions:
// - dtypes F32, F16 and BF16 are read (converted to Float32); any other dtype is refused by name.
// - The tensors must tile the data section exactly (no overlaps, no gaps, no trailing bytes), as the reference
//   implementation requires; a duplicated JSON key (JSON.parse keeps the last) therefore shows up as a gap.
// - NaN/Inf values are an error by default: a checkpoint with them cannot give meaningful logits, and silently
//   propagating them would surface much later as nonsense. `allowNonFinite: true` turns them into warnings.
import { open, stat } from 'node:fs/promises';
import { UserError } from '../util/errors';
import { writeFileAtomic } from './atomic';
import type { Tensor } from './types';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

/** Header (JSON) limit; the reference implementation uses the same 100 MB bound. */
export const MAX_HEADER_BYTES = 100_000_000;
/** Default limit on a whole file: far above any model here, low enough to refuse absurd inputs early. */
export const DEFAULT_MAX_FILE_BYTES = 2 * 1024 ** 3;

export interface SafetensorsReadOptions {
  /** Report NaN/Inf values as warnings instead of failing (default false). */
  allowNonFinite?: boolean;
  /** Refuse files larger than this many bytes (default 2 GiB). */
  maxFileBytes?: number;
}

export interface SafetensorsContents {
  tensors: Map<string, Tensor>;
  /** The stored dtype of each tensor (data is always converted to Float32). */
  dtypes: Map<string, SafetensorsDtype>;
  /** `__metadata__` (string values only), empty when absent. */
  metadata: Record<string, string>;
  /** Non-fatal findings (only NaN/Inf values when `allowNonFinite` is set). */
  warnings: string[];
}

interface Entry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/** Parses a safetensors file held in memory. `file` names the source in error messages. */
export function parseSafetensors(bytes: Uint8Array, file: string): Map<string, Tensor> {
  return parseSafetensorsFull(bytes, file).tensors;
}

/** Like parseSafetensors, also returning the metadata, stored dtypes and warnings. */
export function parseSafetensorsFull(
  bytes: Uint8Array,
  file: string,
  options: SafetensorsReadOptions = {},
): SafetensorsContents {
  const fail = (msg: string): never => {
    throw new UserError(`not a valid safetensors file: ${msg}`, file);
  };
  const maxFile = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  if (bytes.length > maxFile) fail(`file is ${bytes.length} bytes, over the ${maxFile}-byte limit`);
  if (bytes.length < 8) fail(`file is only ${bytes.length} bytes; it must start with an 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen64 = view.getBigUint64(0, true);
  if (headerLen64 > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length ${headerLen64} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const headerLen = Number(headerLen64);
  if (headerLen < 2) fail(`header length ${headerLen} is too small to hold a JSON object`);
  if (8 + headerLen > bytes.length) {
    fail(`header length ${headerLen} runs past the end of the file (${bytes.length} bytes; truncated?)`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    return fail('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    return fail(`header is not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    fail('header must be a JSON object mapping tensor names to {dtype, shape, data_offsets}');
  }
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__ value of "${clip(k)}" must be a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    entries.push(parseEntry(name, value, dataLen, fail));
  }
  // Tiling check: sorted by start, each tensor must begin where the previous one ended.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev: Entry | undefined;
  for (const e of sorted) {
    if (e.begin < cursor) {
      fail(`tensors "${clip(prev?.name ?? '')}" and "${clip(e.name)}" overlap (bytes ${e.begin}..${cursor} of the data section)`);
    }
    if (e.begin > cursor) fail(`data section has unused bytes ${cursor}..${e.begin} (before "${clip(e.name)}")`);
    cursor = e.end;
    prev = e;
  }
  if (cursor !== dataLen) {
    fail(`data section is ${dataLen} bytes but the tensors cover only ${cursor} (trailing or missing bytes)`);
  }

  const tensors = new Map<string, Tensor>();
  const dtypes = new Map<string, SafetensorsDtype>();
  const warnings: string[] = [];
  // Keep the header's order of names stable (alphabetical in files we write).
  for (const e of entries) {
    const data = decode(bytes.subarray(dataStart + e.begin, dataStart + e.end), e.dtype);
    const bad = countNonFinite(data);
    if (bad.count > 0) {
      const msg = `tensor "${clip(e.name)}" has ${bad.count} NaN/Inf value(s) (first at flat index ${bad.first})`;
      if (options.allowNonFinite) warnings.push(`${file}: ${msg}`);
      else throw new UserError(msg, file);
    }
    tensors.set(e.name, { shape: e.shape, data });
    dtypes.set(e.name, e.dtype);
  }
  return { tensors, dtypes, metadata, warnings };
}

function parseEntry(name: string, value: unknown, dataLen: number, fail: (msg: string) => never): Entry {
  const where = `tensor "${clip(name)}"`;
  if (name.length === 0) fail('a tensor has an empty name');
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${where}: entry must be an object`);
  const v = value as Record<string, unknown>;
  const dtype = v.dtype;
  if (typeof dtype !== 'string') fail(`${where}: missing dtype`);
  if (!(dtype === 'F32' || dtype === 'F16' || dtype === 'BF16')) {
    fail(`${where}: dtype ${clip(String(dtype))} is not supported (only F32, F16 and BF16 weights can be read)`);
  }
  const dt = dtype as SafetensorsDtype;
  const shape = v.shape;
  if (!Array.isArray(shape)) fail(`${where}: shape must be an array of non-negative integers`);
  const shp = shape as unknown[];
  if (shp.length > 8) fail(`${where}: shape has ${shp.length} dimensions (more than 8)`);
  let count = 1;
  for (const s of shp) {
    if (typeof s !== 'number' || !Number.isSafeInteger(s) || s < 0) fail(`${where}: shape entry ${clip(JSON.stringify(s) ?? String(s))} is not a non-negative integer`);
    count *= s as number;
    if (!Number.isSafeInteger(count)) fail(`${where}: shape [${shp.join(', ')}] is too large`);
  }
  const offs = v.data_offsets;
  if (!Array.isArray(offs) || offs.length !== 2) fail(`${where}: data_offsets must be [begin, end]`);
  const [begin, end] = offs as unknown[];
  for (const o of [begin, end]) {
    if (typeof o !== 'number' || !Number.isSafeInteger(o) || o < 0) fail(`${where}: data_offsets ${clip(JSON.stringify(offs))} must be non-negative integers`);
  }
  const b = begin as number;
  const e = end as number;
  if (e < b) fail(`${where}: data_offsets end ${e} is before begin ${b}`);
  if (e > dataLen) fail(`${where}: data_offsets [${b}, ${e}] run past the data section (${dataLen} bytes; truncated file?)`);
  const expected = count * DTYPE_BYTES[dt];
  if (e - b !== expected) {
    fail(`${where}: shape [${shp.join(', ')}] of ${dt} needs ${expected} bytes but data_offsets [${b}, ${e}] span ${e - b}`);
  }
  return { name, dtype: dt, shape: shp as number[], begin: b, end: e };
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function decode(raw: Uint8Array, dtype: SafetensorsDtype): Float32Array {
  if (dtype === 'F32') {
    const n = raw.length / 4;
    if (LITTLE_ENDIAN) {
      // Copy into a fresh aligned buffer (the source offset need not be 4-aligned).
      return new Float32Array(raw.slice().buffer, 0, n);
    }
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
    return out;
  }
  const n = raw.length / 2;
  const out = new Float32Array(n);
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (dtype === 'BF16') {
    // bfloat16 is the top half of a float32.
    const u32 = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) u32[i] = dv.getUint16(2 * i, true) << 16;
    return out;
  }
  for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(2 * i, true));
  return out;
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // subnormal (or zero)
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function countNonFinite(data: Float32Array): { count: number; first: number } {
  let count = 0;
  let first = -1;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      if (count === 0) first = i;
      count++;
    }
  }
  return { count, first };
}

/** Keeps hostile names and values from flooding error messages. */
function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** Reads and parses a safetensors file; the size is checked before anything is read. */
export async function readSafetensorsFile(path: string, options: SafetensorsReadOptions = {}): Promise<Map<string, Tensor>> {
  return (await readSafetensorsFileFull(path, options)).tensors;
}

export async function readSafetensorsFileFull(path: string, options: SafetensorsReadOptions = {}): Promise<SafetensorsContents> {
  return parseSafetensorsFull(await readBoundedFile(path, options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES), path, options);
}

async function readBoundedFile(path: string, maxBytes: number): Promise<Uint8Array> {
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new UserError('not a regular file', path);
    size = st.size;
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, path);
  }
  if (size > maxBytes) throw new UserError(`not a valid safetensors file: file is ${size} bytes, over the ${maxBytes}-byte limit`, path);
  const fh = await open(path, 'r');
  try {
    const buf = new Uint8Array(size);
    let off = 0;
    while (off < size) {
      const { bytesRead } = await fh.read(buf, off, size - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return off === size ? buf : buf.subarray(0, off);
  } finally {
    await fh.close();
  }
}

/**
 * Serializes tensors as F32 safetensors: names in alphabetical order, header padded with spaces to a multiple of
 * 8 bytes (so the data section is 8-byte aligned), metadata always including {"format":"pt"} as torch writes it
 * (Hugging Face loaders look for it).
 */
export function serializeSafetensors(tensors: Map<string, Tensor>, metadata: Record<string, string> = {}): Uint8Array[] {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', ...metadata } };
  let offset = 0;
  for (const name of names) {
    if (name.length === 0 || name === '__metadata__') throw new UserError(`cannot write a tensor named "${name}"`);
    const t = tensors.get(name) as Tensor;
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (!t.shape.every((s) => Number.isSafeInteger(s) && s >= 0) || count !== t.data.length) {
      throw new UserError(`cannot write tensor "${name}": shape [${t.shape.join(', ')}] does not match its ${t.data.length} values`);
    }
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + 4 * count] };
    offset += 4 * count;
  }
  let json = JSON.stringify(header);
  let jsonBytes = new TextEncoder().encode(json);
  const pad = (8 - (jsonBytes.length % 8)) % 8;
  if (pad > 0) {
    json += ' '.repeat(pad);
    jsonBytes = new TextEncoder().encode(json);
  }
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(jsonBytes.length), true);
  const chunks: Uint8Array[] = [prefix, jsonBytes];
  for (const name of names) {
    const data = (tensors.get(name) as Tensor).data;
    if (LITTLE_ENDIAN) {
      chunks.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    } else {
      const out = new Uint8Array(data.length * 4);
      const dv = new DataView(out.buffer);
      for (let i = 0; i < data.length; i++) dv.setFloat32(4 * i, data[i], true);
      chunks.push(out);
    }
  }
  return chunks;
}

/** Writes tensors as an F32 safetensors file, atomically (temp file + rename). */
export async function writeSafetensorsFile(
  path: string,
  tensors: Map<string, Tensor>,
  metadata: Record<string, string> = {},
): Promise<void> {
  await writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}

/** Concatenates serializeSafetensors' chunks (handy for tests and in-memory round trips). */
export function safetensorsBytes(tensors: Map<string, Tensor>, metadata?: Record<string, string>): Uint8Array {
  const chunks = serializeSafetensors(tensors, metadata);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
