// Atomic file output for the model area: write a temp file in the target folder, then rename over the target,
// so a crash or Ctrl-C never leaves a half-written checkpoint or sidecar behind.
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Writes `chunks` to `path` atomically (same-folder temp file + fsync + rename). */
export async function writeFileAtomic(path: string, chunks: Uint8Array | Uint8Array[]): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const parts = Array.isArray(chunks) ? chunks : [chunks];
  let done = false;
  try {
    const fh = await open(tmp, 'wx');
    try {
      for (const part of parts) {
        let off = 0;
        while (off < part.length) {
          const { bytesWritten } = await fh.write(part, off, part.length - off);
          off += bytesWritten;
        }
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    done = true;
  } finally {
    if (!done) await rm(tmp, { force: true });
  }
}
