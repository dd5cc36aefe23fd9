import type { ErrorKind } from '../errors.js';

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

export function exitCodeFor(kind: ErrorKind): number {
  return kind === 'usage' ? EXIT.usage : EXIT.failed;
}
