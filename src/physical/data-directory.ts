import { constants } from 'node:fs';
import { access, readdir, stat, statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { messageOf } from '../errors.js';
import type { DataDirectoryState } from './check-rules.js';

/** What --pgdata holds, and the free space where it is or will be. */
export async function inspectDataDirectory(path: string): Promise<DataDirectoryState> {
  const full = resolve(path);
  const info = await stat(full).catch(() => undefined);
  if (info === undefined) {
    const parent = await nearestExisting(dirname(full));
    try {
      await access(parent, constants.W_OK);
    } catch (error) {
      return { kind: 'not-writable', why: `${parent} is not writable for this user (${messageOf(error)})` };
    }
    return { kind: 'absent', freeBytes: await freeBytes(parent) };
  }
  if (!info.isDirectory()) return { kind: 'not-a-directory' };
  const entries = await readdir(full);
  if (entries.length > 0) return { kind: 'not-empty', entries };
  try {
    await access(full, constants.W_OK);
  } catch (error) {
    return { kind: 'not-writable', why: messageOf(error) };
  }
  return { kind: 'empty', freeBytes: await freeBytes(full) };
}

async function nearestExisting(path: string): Promise<string> {
  for (let dir = path; ; dir = dirname(dir)) {
    if (
      await stat(dir).then(
        () => true,
        () => false,
      )
    )
      return dir;
    if (dirname(dir) === dir) return dir;
  }
}

async function freeBytes(path: string): Promise<number | undefined> {
  const fs = await statfs(path).catch(() => undefined);
  return fs === undefined ? undefined : fs.bavail * fs.bsize;
}
