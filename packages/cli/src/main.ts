#!/usr/bin/env node
/**
 * The `omniweb` command. Bad input of any kind (flags, files, configs) exits
 * with code 2 and one line `error: <code>: <message>` on stderr, so scripts
 * can tell a wrong call from a crash (exit 1).
 */
import { OmniError } from '@omniweb/core';
import { CONVERT_USAGE, convertCommand } from './convert.js';
import { inspectCommand } from './inspect.js';
import { MAKE_CHECKPOINT_USAGE, makeCheckpointCommand } from './makeCheckpoint.js';
import { RUN_CASE_USAGE, runCaseCommand } from './runCase.js';
import { RUN_USAGE, runCommand } from './run.js';
import { SPEAK_USAGE, speakCommand } from './speak.js';

const USAGE = `usage:
  omniweb inspect <checkpoint-folder | file.safetensors>
  ${RUN_USAGE}
  ${SPEAK_USAGE}
  ${RUN_CASE_USAGE}
  ${MAKE_CHECKPOINT_USAGE}
  ${CONVERT_USAGE}
  omniweb help`;

async function main(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'inspect':
      return inspectCommand(rest);
    case 'run-case':
      return runCaseCommand(rest);
    case 'make-checkpoint':
      return makeCheckpointCommand(rest);
    case 'convert':
      return convertCommand(rest);
    case 'run':
      return runCommand(rest);
    case 'speak':
      return speakCommand(rest);
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return;
    default:
      throw new OmniError('BAD_INPUT', `${command === undefined ? 'no command given' : `unknown command ${JSON.stringify(command)}`}; commands: inspect, run-case, help, make-checkpoint, convert, run, speak`);
  }
}

// A reader that stops early (`omniweb inspect … | head`) is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

main(process.argv.slice(2)).catch((e: unknown) => {
  if (e instanceof OmniError) {
    process.stderr.write(`error: ${e.code}: ${e.message.replace(/\s*\n\s*/g, ' ')}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`error: INTERNAL: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exitCode = 1;
  }
});
