import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';

describe('rasp CLI', () => {
  it('prints help and exits 0', () => {
    const r = spawnSync(process.execPath, ['bin/rasp.cjs', '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Usage: rasp');
  });
  it('exits 1 on an unknown command', () => {
    const r = spawnSync(process.execPath, ['bin/rasp.cjs', 'no-such-command'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
  });
});
