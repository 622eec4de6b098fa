// `pnpm test`: builds the kernels, runs every vitest suite (unit and kernel tests with the
// root config, browser and end-to-end tests with e2e/vitest.config.ts), and ends with one
// line, `N passed, N failed` (`, N skipped` when any were), exiting non-zero on any failure.
// A suite that crashes or a file that fails to load counts as a failure, never as nothing.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const resultsDir = `${root}test-results`;
const vitestBin = createRequire(import.meta.url).resolve('vitest/vitest.mjs');

const RUNS = [
  { name: 'unit and kernel tests', config: 'vitest.config.ts', report: 'vitest-main.json' },
  { name: 'browser and end-to-end tests', config: 'e2e/vitest.config.ts', report: 'vitest-e2e.json' },
];

const totals = { passed: 0, failed: 0, skipped: 0 };
mkdirSync(resultsDir, { recursive: true });

function step(title) {
  console.log(`\n── ${title}`);
}

step('building kernels (scripts/build-kernels.mjs)');
const build = spawnSync(process.execPath, [`${root}scripts/build-kernels.mjs`], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) {
  console.error(`kernel build failed (exit ${build.status ?? build.signal}); tests that need kernels will fail too`);
  totals.failed += 1;
}

for (const run of RUNS) {
  step(`${run.name} (${run.config})`);
  const report = `${resultsDir}/${run.report}`;
  rmSync(report, { force: true });
  const result = spawnSync(process.execPath, [
    vitestBin, 'run', '--config', `${root}${run.config}`,
    '--reporter=default', '--reporter=json', `--outputFile.json=${report}`,
  ], { cwd: root, stdio: 'inherit' });
  if (!existsSync(report)) {
    console.error(`${run.name}: vitest wrote no report (exit ${result.status ?? result.signal}); counted as one failure`);
    totals.failed += 1;
    continue;
  }
  const json = JSON.parse(readFileSync(report, 'utf8'));
  totals.passed += json.numPassedTests;
  totals.failed += json.numFailedTests;
  totals.skipped += json.numPendingTests + json.numTodoTests;
  // A file that fails before its tests run (import error, failing hook) reports no failed test.
  for (const file of json.testResults) {
    const failedTests = file.assertionResults.filter((t) => t.status === 'failed').length;
    if (file.status === 'failed' && failedTests === 0) {
      console.error(`${file.name}: ${file.message || 'failed without a failed test'}; counted as one failure`);
      totals.failed += 1;
    }
  }
  if (result.status !== 0 && json.numFailedTests === 0 && json.numFailedTestSuites === 0) {
    console.error(`${run.name}: vitest exited ${result.status ?? result.signal} with no failed test; counted as one failure`);
    totals.failed += 1;
  }
}

console.log(`${totals.passed} passed, ${totals.failed} failed${totals.skipped ? `, ${totals.skipped} skipped` : ''}`);
process.exit(totals.failed > 0 ? 1 : 0);
