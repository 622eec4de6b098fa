/**
 * Command-line flags, shared by every command: parsing `--flag value`, `--flag=value` and
 * `--switch` against a command's table, and typed reads of the values, each error a BAD_INPUT
 * that names the command.
 */
import { OmniError } from '@omniweb/core';

export type FlagKind = 'value' | 'switch';

/** The BAD_INPUT a command's flag problem raises. */
export function badFlag(command: string, message: string): OmniError {
  return new OmniError('BAD_INPUT', `${command}: ${message} (omniweb help shows every flag)`);
}

/** `--flag value`, `--flag=value` or `--switch` → values by flag name; every argument must be a known flag. */
export function parseFlags(command: string, argv: readonly string[], flags: Readonly<Record<string, FlagKind>>): Map<string, string> {
  const bad = (message: string) => badFlag(command, message);
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw bad(`unexpected argument ${JSON.stringify(arg)}; every ${command} argument is a --flag`);
    const eq = arg.indexOf('=');
    const flag = arg.slice(2, eq < 0 ? undefined : eq);
    if (!Object.hasOwn(flags, flag)) throw bad(`unknown flag --${flag}`);
    if (values.has(flag)) throw bad(`--${flag} is given twice`);
    if (flags[flag] === 'switch') {
      if (eq >= 0) throw bad(`--${flag} takes no value`);
      values.set(flag, 'true');
      continue;
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value === '' || (eq < 0 && value.startsWith('--'))) throw bad(`--${flag} needs a value`);
    values.set(flag, value);
  }
  return values;
}

/** Typed reads of parsed values: each returns the fallback (or null) when the flag is absent. */
export function flagReader(command: string, values: ReadonlyMap<string, string>) {
  const bad = (message: string) => badFlag(command, message);
  return {
    oneOf<T extends string>(flag: string, allowed: readonly T[], fallback: T): T {
      const v = values.get(flag);
      if (v === undefined) return fallback;
      if (!(allowed as readonly string[]).includes(v)) throw bad(`--${flag} ${v} is not one of ${allowed.join(', ')}`);
      return v as T;
    },
    positiveInt(flag: string): number | null {
      const v = values.get(flag);
      if (v === undefined) return null;
      if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v)) || Number(v) < 1) throw bad(`--${flag} ${v} is not a positive integer`);
      return Number(v);
    },
    positiveNumber(flag: string): number | null {
      const v = values.get(flag);
      if (v === undefined) return null;
      const n = Number(v);
      if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw bad(`--${flag} ${v} is not a positive number`);
      return n;
    },
  };
}
