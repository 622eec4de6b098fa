import { isOmniError, type OmniErrorCode } from '@omniweb/core';

/** The code and message of the OmniError `run` rejects with; any other outcome fails the test. */
export async function failure(run: () => Promise<unknown>): Promise<{ code: OmniErrorCode; message: string }> {
  try {
    await run();
  } catch (e) {
    if (isOmniError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected an OmniError');
}
