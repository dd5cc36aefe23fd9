import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

type Env = Readonly<Record<string, string | undefined>>;

export interface PasswordLookup {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** True when host is the default socket directory, which libpq matches as "localhost". */
  readonly hostIsDefaultSocket: boolean;
}

/**
 * libpq's password file, with libpq's rules: PGPASSFILE or ~/.pgpass; ignored with a warning
 * when group or others can read it; `*` matches anything; `\:` and `\\` escape; the first
 * matching line wins. (The `pgpass` npm module returns the last matching line and reads only
 * process.env, so pgferry keeps these twenty lines itself.)
 */
export function lookupPassword(lookup: PasswordLookup, env: Env, warn: (message: string) => void): string | undefined {
  const file = env.PGPASSFILE ?? join(env.HOME ?? homedir(), '.pgpass');
  let text: string;
  try {
    const stats = statSync(file);
    if (!stats.isFile()) return undefined;
    if ((stats.mode & 0o077) !== 0) {
      warn(`password file "${file}" has group or world access and is ignored; run chmod 0600 "${file}"`);
      return undefined;
    }
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const wanted = [lookup.host, String(lookup.port), lookup.database, lookup.user];
  for (const line of text.split(/\r?\n/)) {
    if (line === '' || line.startsWith('#')) continue;
    const fields = splitFields(line);
    if (fields.length < 5) continue;
    const matches = wanted.every((value, i) => {
      const field = fields[i]!;
      if (field === '*' || field === value) return true;
      return i === 0 && lookup.hostIsDefaultSocket && field === 'localhost';
    });
    if (matches) return fields.slice(4).join(':');
  }
  return undefined;
}

function splitFields(line: string): string[] {
  const fields: string[] = [];
  let current = '';
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === '\\' && i + 1 < line.length) {
      current += line[++i];
    } else if (ch === ':' && fields.length < 4) {
      fields.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  fields.push(current);
  return fields;
}
