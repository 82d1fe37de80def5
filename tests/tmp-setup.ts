// Every temporary folder the suite makes (mkdtemp under os.tmpdir(), in the test workers and in the CLI and
// server processes they start) lands in one folder per run, removed when the run ends: a test that fails midway
// leaves nothing behind in the machine's /tmp.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'rasp-tests-'));
  // os.tmpdir() reads TMPDIR on every call; the workers and their children inherit it.
  process.env.TMPDIR = root;
  return () => rmSync(root, { recursive: true, force: true });
}
