import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const tsx = join(root, 'node_modules/.bin/tsx');
const main = join(root, 'packages/cli/src/main.ts');

export interface Run { code: number; stdout: string; stderr: string }

/** `omniweb …args` in a child process from the repository root, as a user runs it. */
export function omniweb(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(tsx, [main, ...args], { cwd: root, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}
