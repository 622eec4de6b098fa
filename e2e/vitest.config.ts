// Browser suites: the root config (aliases, Dawn environment) with the e2e tests only,
// one fork (one Chromium at a time on two shared cores) and time for bundling and SwiftShader.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import base from '../vitest.config.js';

export default defineConfig({
  ...base,
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    ...base.test,
    include: ['e2e/test/**/*.test.ts'],
    poolOptions: { forks: { maxForks: 1, minForks: 1 } },
    testTimeout: 300_000,
    hookTimeout: 600_000,
  },
});
