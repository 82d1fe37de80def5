import { defineConfig } from 'vitest/config';

// The real-VS-Code tier: one code-server + Chromium session driven step by step (`npm run test:e2e`).
export default defineConfig({
  test: {
    include: ['tests/e2e/**/*.e2e.ts'],
    testTimeout: 15 * 60_000,
    // Setup may install code-server from scratch (about 5 minutes of native builds) and package the .vsix.
    hookTimeout: 25 * 60_000,
    pool: 'forks',
    fileParallelism: false,
    reporters: ['verbose', ['json', { outputFile: 'out/test-results/e2e.json' }]],
  },
});
