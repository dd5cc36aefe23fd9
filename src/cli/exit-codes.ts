import { ERROR_CODES, type ErrorCode } from '../errors.js';

/** The exit codes every pgferry command shares. */
export const EXIT = {
  ok: 0,
  /** A side can't be reached or queried, or something unexpected failed. */
  failed: 1,
  usage: 2,
  /** The command ran, and what it found blocks the migration. */
  blocked: 3,
  /** verify ran and found the target different from the source. */
  different: 4,
} as const;

/** A failure's exit status follows from its code's kind: usage 2, anything else 1. */
export function exitCodeFor(code: ErrorCode): number {
  return ERROR_CODES[code] === 'usage' ? EXIT.usage : EXIT.failed;
}
