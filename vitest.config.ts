import { defineConfig } from 'vitest/config';

// Unit, LSP, DAP and CLI tests. The real-VS-Code tier (tests/e2e) runs separately via `npm run test:e2e`.
export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    exclude: ['tests/e2e/**', 'node_modules/**'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    globalSetup: ['tests/tmp-setup.ts'],
    // The JSON report lets .ci/run print a plain 'N passed, N failed' line.
    reporters: ['default', ['json', { outputFile: 'out/test-results/unit.json' }]],
  },
});
