import { scrubPatterns, scrubSecrets } from '../config/index.js';
import { PgferryError, messageOf } from '../errors.js';
import { EXIT, exitCodeFor } from './exit-codes.js';

/**
 * Everything the CLI prints goes through here. Reports on stdout are built from redacted
 * descriptions and only need the shape-based mask; stderr carries text from libraries and
 * servers, so every known secret is masked there.
 */
export function printOut(text: string): void {
  process.stdout.write(scrubPatterns(text));
}

export function printErr(text: string): void {
  process.stderr.write(scrubSecrets(text));
}

/**
 * One line for the user: what went wrong and what to do. The stack trace only with --debug,
 * because a user can do nothing with it and it may carry values from the environment.
 */
export function reportError(error: unknown, debug: boolean): number {
  if (error instanceof PgferryError) {
    // One line for the problem and the way out; a fix that quotes SQL keeps its lines, indented.
    const [first, ...rest] = (error.fix ?? '').split('\n');
    printErr(`pgferry: ${error.message}${first ? ` — ${first}` : ''}\n${rest.map((line) => `    ${line}\n`).join('')}`);
    if (debug && error.detail) printErr(`${error.detail}\n`);
    if (debug && error.cause instanceof Error && error.cause.stack) printErr(`${error.cause.stack}\n`);
    return exitCodeFor(error.code);
  }
  printErr(`pgferry: unexpected failure: ${messageOf(error)} — run again with --debug for details, and report it if it persists\n`);
  if (debug && error instanceof Error && error.stack) printErr(`${error.stack}\n`);
  return EXIT.failed;
}
