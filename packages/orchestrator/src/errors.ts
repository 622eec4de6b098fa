/**
 * OmniErrors keep their code across a worker boundary (comlink alone sends a bare Error).
 * Anything else a stage throws arrives as INTERNAL: the stage broke in a way it did not
 * foresee, so the pipeline rebuilds it. Both sides import this module.
 */
import { OmniError, type OmniErrorCode } from '@omniweb/core';
import { transferHandlers, type TransferHandler } from 'comlink';

interface WireError {
  code: OmniErrorCode;
  message: string;
}

type Thrown = { value: unknown };

const fallback = transferHandlers.get('throw') as TransferHandler<Thrown, unknown>;

const omniErrors: TransferHandler<Thrown, WireError> = {
  canHandle: (value): value is Thrown => fallback.canHandle(value),
  serialize({ value }) {
    const wire: WireError = value instanceof OmniError
      ? { code: value.code, message: value.message }
      : { code: 'INTERNAL', message: `unexpected failure: ${value instanceof Error ? value.message : String(value)}` };
    return [wire, []];
  },
  deserialize(wire) {
    throw new OmniError(wire.code, wire.message);
  },
};

transferHandlers.set('throw', omniErrors as TransferHandler<unknown, unknown>);
