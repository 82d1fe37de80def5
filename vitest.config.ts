import { defineConfig } from 'vitest/config';

// Unit, LSP, DAP and CLI tests. The real-VS-Code tier (tests/e2e) runs separately via `npm run test:e2e`.
export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    exclude: ['tests/e2e/**', 'node_modules/**'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
  },
});
