import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { messageOf, usageError } from '../errors.js';

const run = promisify(execFile);

/** The programs physical mode runs from `--pg-bin`. */
export type PgProgram = 'pg_basebackup' | 'pg_ctl' | 'postgres';

/** A program found in `--pg-bin` and the PostgreSQL version it belongs to. */
export interface FoundProgram {
  readonly path: string;
  readonly version: string;
  readonly major: number;
}

/** The major version in a `--version` line ("pg_ctl (PostgreSQL) 15.18 (Debian …)"; 9.6 is 9.6). */
export function majorOfVersionLine(line: string): { version: string; major: number } | undefined {
  const match = /\(PostgreSQL\) (\d+)(?:\.(\d+))?/.exec(line);
  if (!match) return undefined;
  const first = Number(match[1]);
  const major = first >= 10 ? first : Number(`${first}.${match[2] ?? 0}`);
  return { version: `${match[1]}${match[2] === undefined ? '' : `.${match[2]}`}`, major };
}

/** Finds `program` in `dir` and asks it its version; a clear error names what is missing. */
export async function findProgram(dir: string, program: PgProgram): Promise<FoundProgram> {
  const path = join(dir, program);
  try {
    await access(path, constants.X_OK);
  } catch {
    throw usageError(
      `--pg-bin ${dir} has no ${program} this user can run`,
      `give --pg-bin the directory of the PostgreSQL binaries of the source's major version (e.g. /usr/lib/postgresql/15/bin)`,
    );
  }
  let output: string;
  try {
    output = (await run(path, ['--version'], { timeout: 10_000 })).stdout;
  } catch (error) {
    throw usageError(`${path} --version failed: ${messageOf(error)}`, `check the PostgreSQL installation in ${dir}`);
  }
  const parsed = majorOfVersionLine(output);
  if (!parsed) throw usageError(`${path} --version printed no PostgreSQL version (${output.trim()})`, `check the installation in ${dir}`);
  return { path, ...parsed };
}
