import { open, readdir, stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';

/** The server's last FATAL (or PANIC) and the DETAIL and HINT lines that follow it. */
export interface ServerComplaint {
  readonly severity: 'FATAL' | 'PANIC';
  readonly message: string;
  readonly detail: string | undefined;
  readonly hint: string | undefined;
}

const LINE = /\b(FATAL|PANIC|DETAIL|HINT|LOG|WARNING|ERROR|STATEMENT|CONTEXT):\s+(.*)$/;

/**
 * Reads the last FATAL or PANIC out of server log text (stderr format, whatever
 * log_line_prefix puts before the severity), with the DETAIL and HINT that belong to it.
 */
export function lastComplaint(text: string): ServerComplaint | undefined {
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const head = LINE.exec(lines[i]!);
    if (head?.[1] !== 'FATAL' && head?.[1] !== 'PANIC') continue;
    let detail: string | undefined;
    let hint: string | undefined;
    for (const line of lines.slice(i + 1)) {
      const next = LINE.exec(line);
      if (next?.[1] === 'DETAIL') detail ??= next[2]!.trim();
      else if (next?.[1] === 'HINT') hint ??= next[2]!.trim();
      else if (next !== null || line.trim() !== '') break;
    }
    return { severity: head[1], message: head[2]!.trim(), detail, hint };
  }
  return undefined;
}

/** The complaint in words, for an error message. */
export function describeComplaint(complaint: ServerComplaint): string {
  return [
    `${complaint.severity}: ${complaint.message}`,
    ...(complaint.detail === undefined ? [] : [`DETAIL: ${complaint.detail}`]),
    ...(complaint.hint === undefined ? [] : [`HINT: ${complaint.hint}`]),
  ].join('; ');
}

/** The logging collector's announcement in the start log: where the rest of the output went. */
const REDIRECTED = /Future log output will appear in directory "([^"]+)"/;

/** The bytes a file holds from `offset` on (at most the last 64 kB of them), '' when there is no such file. */
export async function readFrom(path: string, offset: number): Promise<string> {
  const file = await open(path, 'r').catch(() => undefined);
  if (file === undefined) return '';
  try {
    const { size } = await file.stat();
    const start = Math.max(offset, size - 65536);
    if (size <= start) return '';
    const buffer = Buffer.alloc(size - start);
    await file.read(buffer, 0, buffer.length, start);
    return buffer.toString('utf8');
  } finally {
    await file.close();
  }
}

/**
 * What the server said when it did not start: the start log pg_ctl was given (written from
 * `offset`, where this attempt began), or, when the logging collector took the output over
 * there, the newest file of its directory written since `since`.
 */
export async function startFailure(
  pgdata: string,
  startLog: string,
  offset: number,
  since: number,
): Promise<{ readonly complaint: ServerComplaint | undefined; readonly lastLines: string }> {
  const text = await readFrom(startLog, offset);
  const found = lastComplaint(text);
  const redirected = REDIRECTED.exec(text)?.[1];
  if (found === undefined && redirected !== undefined) {
    const dir = isAbsolute(redirected) ? redirected : join(pgdata, redirected);
    const newest = await newestFile(dir, since);
    if (newest !== undefined) {
      const collected = await readFrom(newest, 0);
      return { complaint: lastComplaint(collected), lastLines: lastLines(collected) };
    }
  }
  return { complaint: found, lastLines: lastLines(text) };
}

function lastLines(text: string): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .slice(-3)
    .join('; ');
}

async function newestFile(dir: string, since: number): Promise<string | undefined> {
  const names = await readdir(dir).catch(() => [] as string[]);
  let best: { path: string; mtime: number } | undefined;
  for (const name of names) {
    const path = join(dir, name);
    const info = await stat(path).catch(() => undefined);
    if (info?.isFile() && info.mtimeMs >= since - 1000 && (best === undefined || info.mtimeMs > best.mtime))
      best = { path, mtime: info.mtimeMs };
  }
  return best?.path;
}
