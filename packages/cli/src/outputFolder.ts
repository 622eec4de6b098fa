import { mkdir, readdir } from 'node:fs/promises';
import { OmniError } from '@omniweb/core';

/**
 * Creates `out` or accepts it empty: commands that write a folder never mix their files with
 * what is already there. A non-empty folder is the caller's mistake (BAD_INPUT, in the
 * `command: … (omniweb help …)` form of the flag errors); anything else is IO.
 */
export async function prepareEmptyFolder(out: string, command: string): Promise<void> {
  try {
    await mkdir(out, { recursive: true });
    const present = await readdir(out);
    if (present.length > 0) {
      throw new OmniError(
        'BAD_INPUT',
        `${command}: --out ${out} is not empty (${present.slice(0, 3).join(', ')}${present.length > 3 ? ', …' : ''}); give a new or empty folder (omniweb help shows every flag)`,
      );
    }
  } catch (e) {
    if (e instanceof OmniError) throw e;
    throw new OmniError('IO', `cannot create ${out}: ${(e as Error).message}`, { cause: e });
  }
}
