// Draws media/icon.png (128x128): an attention-matrix motif, a lower-triangular grid of cells whose shade falls
// off from the diagonal, on a rounded tile. Run once; the PNG is committed. Written without image libraries.
import { deflateSync } from 'node:zlib';
import { Buffer } from 'node:buffer';
import { writeFileSync } from 'node:fs';

const S = 128;
const px = new Uint8Array(S * S * 4);
function put(x, y, [r, g, b, a]) {
  const i = (y * S + x) * 4;
  px[i] = r; px[i + 1] = g; px[i + 2] = b; px[i + 3] = a;
}
const radius = 20;
for (let y = 0; y < S; y++) {
  for (let x = 0; x < S; x++) {
    const cx = Math.min(Math.max(x, radius), S - 1 - radius);
    const cy = Math.min(Math.max(y, radius), S - 1 - radius);
    const inside = (x - cx) ** 2 + (y - cy) ** 2 <= radius * radius;
    put(x, y, inside ? [38, 44, 78, 255] : [0, 0, 0, 0]);
  }
}
// 5x5 causal attention grid: cell (q, k) exists for k <= q, brighter on the diagonal.
const n = 5, cell = 16, gap = 3, x0 = 22, y0 = 22;
for (let q = 0; q < n; q++) {
  for (let k = 0; k <= q; k++) {
    const w = k === q ? 1 : 0.35 + 0.4 * (k / Math.max(1, q));
    const colour = [Math.round(90 + 165 * w), Math.round(110 + 100 * w), Math.round(214 - 120 * w), 255];
    for (let dy = 0; dy < cell; dy++) for (let dx = 0; dx < cell; dx++) put(x0 + k * (cell + gap) + dx, y0 + q * (cell + gap) + dy, colour);
  }
}
function crc32(buf) {
  let c, crc = 0xffffffff;
  for (const b of buf) {
    c = (crc ^ b) & 0xff;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crc = (crc >>> 8) ^ c;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
const ihdr = Buffer.alloc(13);
ihdr.writeUInt32BE(S, 0); ihdr.writeUInt32BE(S, 4);
ihdr[8] = 8; ihdr[9] = 6; // 8-bit RGBA
const raw = Buffer.alloc(S * (S * 4 + 1));
for (let y = 0; y < S; y++) Buffer.from(px.buffer, y * S * 4, S * 4).copy(raw, y * (S * 4 + 1) + 1);
const png = Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
writeFileSync(new URL('../media/icon.png', import.meta.url), png);
