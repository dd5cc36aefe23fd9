import { usageError, type Side } from '../errors.js';

/**
 * The libpq connection parameters pgferry understands. Anything else in a connection string
 * is refused by name, as libpq does, rather than silently ignored.
 */
export const CONNECTION_KEYWORDS = [
  'host',
  'hostaddr',
  'port',
  'dbname',
  'user',
  'password',
  'sslmode',
  'sslrootcert',
  'sslcert',
  'sslkey',
  'connect_timeout',
  'application_name',
  'options',
  'keepalives',
  'keepalives_idle',
  'keepalives_interval',
  'keepalives_count',
] as const;

export type ConnectionKeyword = (typeof CONNECTION_KEYWORDS)[number];

/**
 * libpq parameters that psql users carry in their connection strings and that change nothing
 * for pgferry's single-host, password or certificate sessions: accepted and ignored, so a
 * string that works with psql works here.
 */
export const IGNORED_KEYWORDS = new Set([
  'channel_binding',
  'target_session_attrs',
  'fallback_application_name',
  'tcp_user_timeout',
  'gssencmode',
  'sslcompression',
  'sslsni',
  'sslcrl',
  'sslcrldir',
  'ssl_min_protocol_version',
  'ssl_max_protocol_version',
  'krbsrvname',
  'requirepeer',
  'load_balance_hosts',
]);
export type ConnectionParams = Partial<Record<ConnectionKeyword, string>>;

const KNOWN = new Set<string>(CONNECTION_KEYWORDS);

function isKnown(keyword: string): keyword is ConnectionKeyword {
  return KNOWN.has(keyword);
}

/** Parses `postgres://…` URLs and libpq `key=value` strings into their parameters. */
export function parseConnectionString(text: string, side: Side): ConnectionParams {
  const trimmed = text.trim();
  if (/^postgres(ql)?:\/\//i.test(trimmed)) return parseUrl(trimmed, side);
  // A URL with a slash missing would otherwise be read as key=value text and echoed in the error.
  if (/^postgres(ql)?:/i.test(trimmed)) throw malformed(side, 'a URL must start with postgres:// or postgresql://');
  if (trimmed.includes('=')) return parseKeywords(trimmed, side);
  throw malformed(side, 'it is neither a postgres:// URL nor a list of key=value pairs');
}

function malformed(side: Side, why: string) {
  return usageError(
    `${side} connection string is malformed: ${why}`,
    `write it as postgres://user@host:5432/dbname or as "host=… port=5432 dbname=… user=…"`,
  );
}

function parseUrl(text: string, side: Side): ConnectionParams {
  // A password holding "/" (or "?", "#") that was not percent-encoded ends the host early, and
  // its tail would then be read, and shown, as the database name or a parameter. An "@" after
  // the host is the telltale; refuse without echoing anything.
  const afterAuthority = text.replace(/^[^:]+:\/\/[^/?#]*/, '');
  if (afterAuthority.includes('@')) {
    throw malformed(
      side,
      'an "@" follows the host; percent-encode "@", "/", "?" and "#" in the user name and password (as %40, %2F, %3F, %23), and "@" in the database name or parameters',
    );
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw malformed(side, 'the URL cannot be parsed (percent-encode special characters in the user name and password)');
  }
  const params: ConnectionParams = {};
  const decode = (value: string, what: string) => {
    try {
      return decodeURIComponent(value);
    } catch {
      throw malformed(side, `the ${what} holds an invalid percent-encoding`);
    }
  };
  // Non-special schemes keep IPv6 brackets and percent-encoded socket paths in the host.
  let host = decode(url.hostname, 'host');
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host.includes(',')) throw malformed(side, 'several hosts are given; pgferry connects to one server per side');
  if (host !== '') params.host = host;
  if (url.port !== '') params.port = url.port;
  if (url.username !== '') params.user = decode(url.username, 'user name');
  if (url.password !== '') params.password = decode(url.password, 'password');
  const dbname = decode(url.pathname.replace(/^\//, ''), 'database name');
  if (dbname !== '') params.dbname = dbname;
  let passwordInQuery = false;
  for (const [key, value] of queryParameters(url.search, decode)) {
    const keyword = key === 'ssl' && value === 'true' ? 'sslmode' : key;
    if (IGNORED_KEYWORDS.has(keyword)) continue;
    if (!isKnown(keyword)) {
      // "?password=ab&cd" splits a password with an unencoded "&": never echo its tail.
      if (passwordInQuery) throw malformed(side, 'an unknown parameter follows the password; percent-encode "&" and "=" in the password');
      throw unknownKeyword(side, key);
    }
    params[keyword] = keyword === 'sslmode' && key === 'ssl' ? 'require' : value;
    if (keyword === 'password') passwordInQuery = true;
  }
  return params;
}

/**
 * libpq decodes only %XX in URL parameters; URLSearchParams would also turn "+" into a space,
 * changing a password or application_name that holds one.
 */
function queryParameters(search: string, decode: (value: string, what: string) => string): Array<[string, string]> {
  return search
    .replace(/^\?/, '')
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const key = decode(eq < 0 ? pair : pair.slice(0, eq), 'parameter name');
      return [key, eq < 0 ? '' : decode(pair.slice(eq + 1), `value of ${key}`)];
    });
}

function unknownKeyword(side: Side, key: string) {
  return usageError(`${side} connection string has an unknown parameter "${key}"`, `use only ${CONNECTION_KEYWORDS.join(', ')}`);
}

/** libpq's grammar: `key = value` pairs separated by spaces; values may be single-quoted with \' and \\ escapes. */
function parseKeywords(text: string, side: Side): ConnectionParams {
  const params: ConnectionParams = {};
  let i = 0;
  // An unquoted password with a space in it runs on into what looks like the next key; never echo that.
  // Empty after a quoted value, which cannot run on.
  let previousKey = '';
  const skipSpace = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  while (true) {
    skipSpace();
    if (i >= text.length) break;
    const keyStart = i;
    while (i < text.length && /[A-Za-z0-9_]/.test(text[i]!)) i++;
    const key = text.slice(keyStart, i);
    skipSpace();
    if (key === '' || text[i] !== '=') {
      if (previousKey === 'password') {
        throw malformed(side, 'expected "key=value" after the password; put a password that holds spaces in single quotes');
      }
      throw malformed(side, `expected "key=value" near "${text.slice(keyStart, keyStart + 20).replace(/password.*/i, 'password…')}"`);
    }
    i++;
    skipSpace();
    let value = '';
    const quoted = text[i] === "'";
    if (quoted) {
      i++;
      let closed = false;
      while (i < text.length) {
        const ch = text[i]!;
        if (ch === '\\' && i + 1 < text.length) {
          value += text[i + 1];
          i += 2;
        } else if (ch === "'") {
          closed = true;
          i++;
          break;
        } else {
          value += ch;
          i++;
        }
      }
      if (!closed) throw malformed(side, `the quoted value of "${key}" has no closing quote`);
    } else {
      while (i < text.length && !/\s/.test(text[i]!)) {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        value += text[i];
        i++;
      }
    }
    if (IGNORED_KEYWORDS.has(key)) {
      previousKey = quoted ? '' : key;
      continue;
    }
    if (!isKnown(key)) {
      if (previousKey === 'password') {
        throw malformed(side, 'an unknown parameter follows the password; put a password that holds spaces in single quotes');
      }
      throw unknownKeyword(side, key);
    }
    params[key] = value;
    previousKey = quoted ? '' : key;
  }
  return params;
}
