import { chownSync, closeSync, copyFileSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { messageOf, PgferryError } from '../errors.js';

/** What the file was when its replacement was staged: a change since shows in one of these. */
export interface FileSignature {
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
}

/**
 * The configuration file PgBouncer reads on RELOAD, replaced the way an editor should: the new
 * text written beside it, flushed, and renamed over it (PgBouncer never reads half a file), with
 * the file's mode and owner kept, and the previous text kept beside it as `<file>.pgferry-previous`.
 * A cut-over stages the new text before the pause (`stage`: written and flushed beside the file),
 * so that the pause holds only the rename (`commit`).
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

  /**
   * The new text written and flushed beside the file, the file's text kept in `previous`; the
   * file itself is untouched until `commit`. Returns the file's signature, for `commit` to
   * refuse a file changed since.
   */
  stage(text: string): FileSignature {
    try {
      copyFileSync(this.path, this.previous);
      this.writeTemporary(text);
      return this.signature();
    } catch (error) {
      rmSync(this.temporary, { force: true });
      throw this.failure('cannot replace', error, 'let pgferry write the file and its directory');
    }
  }

  /** The staged text renamed over the file, unless someone changed the file since it was staged. */
  commit(staged: FileSignature): void {
    let now: FileSignature;
    try {
      now = this.signature();
    } catch (error) {
      throw this.failure('cannot read', error, 'leave the file in place during the cut-over');
    }
    if (now.ino !== staged.ino || now.size !== staged.size || now.mtimeMs !== staged.mtimeMs) {
      this.discard();
      throw new PgferryError('pgbouncer', `pgbouncer: ${this.path} changed during the cut-over; it is left as it is`, {
        fix: 'make the change to the file before or after a cut-over, not during it, and cut over again',
      });
    }
    try {
      renameSync(this.temporary, this.path);
    } catch (error) {
      this.discard();
      throw this.failure('cannot replace', error, 'let pgferry write the file and its directory');
    }
  }

  /** A staged text that is not to be used. */
  discard(): void {
    rmSync(this.temporary, { force: true });
  }

  /** Replaces the file's text at once (an undo puts back what it held). */
  replace(text: string): void {
    try {
      this.writeTemporary(text);
      renameSync(this.temporary, this.path);
    } catch (error) {
      this.discard();
      throw this.failure('cannot replace', error, 'let pgferry write the file and its directory');
    }
  }

  private writeTemporary(text: string): void {
    const { mode, uid, gid } = statSync(this.path);
    const fd = openSync(this.temporary, 'w', mode & 0o777);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    // PgBouncer may run as another account than pgferry: it must still read the file.
    if (process.getuid?.() === 0) chownSync(this.temporary, uid, gid);
  }

  private signature(): FileSignature {
    const { ino, size, mtimeMs } = statSync(this.path);
    return { ino, size, mtimeMs };
  }

  private failure(what: string, error: unknown, fix: string): PgferryError {
    return new PgferryError('pgbouncer', `pgbouncer: ${what} ${this.path}: ${messageOf(error)}`, { fix, cause: error });
  }
}
