/**
 * PgBouncer's configuration file, as far as a cut-over needs it: the `[databases]` section, where
 * each line `name = key=value key=value …` says where a pooled database's connections go. Pure:
 * the text in, the text out, so every rule is unit-tested. Comments, other sections and the order
 * of lines are kept; only the one entry's host, port and dbname change.
 */

/** Where a pooled database points: the settings a cut-over rewrites (the rest of its line is kept). */
export interface PoolTarget {
  readonly host: string;
  readonly port: number;
  readonly dbname: string;
}

/** One `[databases]` entry: its line, its settings in order, and where it points. */
export interface DatabaseEntry {
  readonly name: string;
  /** Zero-based index of its line in the file. */
  readonly line: number;
  readonly settings: ReadonlyArray<readonly [key: string, value: string]>;
}

const SECTION = /^\s*\[([^\]]+)\]\s*(?:[;#].*)?$/;
const ENTRY = /^\s*("(?:[^"]|"")+"|[^=\s;#]+)\s*=\s*(.*?)\s*$/;

/** The entry for `name` in the `[databases]` section, or undefined (including `*`, the fallback). */
export function findDatabaseEntry(text: string, name: string): DatabaseEntry | undefined {
  let section = '';
  const lines = text.split('\n');
  for (const [index, raw] of lines.entries()) {
    const line = raw.replace(/\r$/, '');
    const header = SECTION.exec(line);
    if (header) {
      section = header[1]!.trim().toLowerCase();
      continue;
    }
    if (section !== 'databases' || /^\s*([;#]|$)/.test(line)) continue;
    const entry = ENTRY.exec(line);
    if (!entry) continue;
    const key = entry[1]!.startsWith('"') ? entry[1]!.slice(1, -1).replace(/""/g, '"') : entry[1]!;
    if (key === name) return { name, line: index, settings: parseSettings(entry[2]!) };
  }
  return undefined;
}

/**
 * libpq-style `key=value` pairs, values optionally in single quotes (with \' and \\ inside),
 * as PgBouncer reads a database's connection string.
 */
export function parseSettings(text: string): Array<[string, string]> {
  const settings: Array<[string, string]> = [];
  let rest = text.trim();
  while (rest !== '') {
    const key = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*/.exec(rest);
    if (!key) throw new Error(`cannot read "${rest}" as key=value settings`);
    rest = rest.slice(key[0].length);
    let value: string;
    if (rest.startsWith("'")) {
      let i = 1;
      value = '';
      for (; i < rest.length && rest[i] !== "'"; i++) {
        if (rest[i] === '\\' && i + 1 < rest.length) i++;
        value += rest[i];
      }
      if (i >= rest.length) throw new Error(`unterminated quote in "${text}"`);
      rest = rest.slice(i + 1);
    } else {
      const end = /\s|$/.exec(rest)!.index;
      value = rest.slice(0, end);
      rest = rest.slice(end);
    }
    settings.push([key[1]!, value]);
    rest = rest.trimStart();
  }
  return settings;
}

/** A value as PgBouncer reads it back: bare when it can be, quoted otherwise. */
function renderValue(value: string): string {
  return /^[^\s'\\]+$/.test(value) ? value : `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** Where an entry points now (host defaults as PgBouncer's do: a Unix socket, port 5432, dbname = the entry's name). */
export function pointsTo(entry: DatabaseEntry): { host: string | undefined; port: number; dbname: string } {
  const get = (key: string) => entry.settings.find(([k]) => k === key)?.[1];
  return { host: get('host'), port: Number(get('port') ?? 5432), dbname: get('dbname') ?? entry.name };
}

/**
 * The file with `entry` pointing at `target`: host, port and dbname replaced (or added), every
 * other setting of the line kept in its place, every other line untouched.
 */
export function repoint(text: string, entry: DatabaseEntry, target: PoolTarget): string {
  const wanted: Record<string, string> = { host: target.host, port: String(target.port), dbname: target.dbname };
  const settings = entry.settings.map(([key, value]): [string, string] => [key, key in wanted ? wanted[key]! : value]);
  for (const key of ['host', 'port', 'dbname']) if (!settings.some(([k]) => k === key)) settings.push([key, wanted[key]!]);
  const lines = text.split('\n');
  const original = lines[entry.line]!;
  const name = /^\s*("(?:[^"]|"")+"|[^=\s;#]+)/.exec(original)![1]!;
  const ending = original.endsWith('\r') ? '\r' : '';
  lines[entry.line] = `${name} = ${settings.map(([key, value]) => `${key}=${renderValue(value)}`).join(' ')}${ending}`;
  return lines.join('\n');
}
