import { constants } from 'node:fs';
import { access, readdir, stat, statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { messageOf } from '../errors.js';

/** What the data directory named by --pgdata holds now. */
export type DataDirectoryState =
  | { readonly kind: 'absent'; readonly freeBytes: number | undefined }
  | { readonly kind: 'empty'; readonly freeBytes: number | undefined }
  | { readonly kind: 'not-empty'; readonly entries: readonly string[] }
  | { readonly kind: 'not-a-directory' }
  | { readonly kind: 'not-writable'; readonly why: string };

/** What stands in the way of a data directory there, for messages ('' when nothing does). */
export function describeDataDirectory(state: DataDirectoryState): string {
  switch (state.kind) {
    case 'not-empty':
      return `not empty (${state.entries.slice(0, 5).join(', ')}${state.entries.length > 5 ? ', …' : ''})`;
    case 'not-a-directory':
      return 'exists and is not a directory';
    case 'not-writable':
      return `cannot be written: ${state.why}`;
    case 'absent':
    case 'empty':
      return '';
  }
}

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
