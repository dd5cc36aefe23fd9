import { chownSync, closeSync, copyFileSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { messageOf, PgferryError } from '../errors.js';

/**
 * The configuration file PgBouncer reads on RELOAD, replaced the way an editor should: the new
 * text written beside it, flushed, and renamed over it (PgBouncer never reads half a file), with
 * the file's mode and owner kept, and the previous text kept beside it as `<file>.pgferry-previous`.
 */
export class PoolConfigFile {
  constructor(readonly path: string) {}

  private get temporary(): string {
    return `${this.path}.pgferry-new`;
  }

  get previous(): string {
    return `${this.path}.pgferry-previous`;
  }

  read(): string {
    try {
      return readFileSync(this.path, 'utf8');
    } catch (error) {
      throw this.failure('cannot read', error, 'give --pgbouncer-ini the file PgBouncer was started with, on the machine pgferry runs on');
    }
  }

  /**
   * Before anything is paused: whether the file can be replaced, tried rather than guessed (a
   * superuser passes every permission check, not a read-only mount or a directory in the way).
   */
  probeWritable(): void {
    try {
      const fd = openSync(this.temporary, 'w', statSync(this.path).mode & 0o777);
      closeSync(fd);
      rmSync(this.temporary);
      const probe = openSync(this.path, 'r+');
      closeSync(probe);
    } catch (error) {
      throw this.failure(
        'cannot replace',
        error,
        `let pgferry write the file and its directory (it writes ${this.temporary}, then renames it)`,
      );
    }
  }

  /** Replaces the file's text; the text it held is kept in `previous`. */
  replace(text: string): void {
    try {
      const { mode, uid, gid } = statSync(this.path);
      copyFileSync(this.path, this.previous);
      const fd = openSync(this.temporary, 'w', mode & 0o777);
      try {
        writeSync(fd, text);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      // PgBouncer may run as another account than pgferry: it must still read the file.
      if (process.getuid?.() === 0) chownSync(this.temporary, uid, gid);
      renameSync(this.temporary, this.path);
    } catch (error) {
      rmSync(this.temporary, { force: true });
      throw this.failure('cannot replace', error, 'let pgferry write the file and its directory');
    }
  }

  private failure(what: string, error: unknown, fix: string): PgferryError {
    return new PgferryError('pgbouncer', `pgbouncer: ${what} ${this.path}: ${messageOf(error)}`, { fix, cause: error });
  }
}
