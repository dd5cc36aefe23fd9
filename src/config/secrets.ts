/**
 * Secrets never reach output. Every password pgferry learns is registered here the moment
 * it is read, and every line pgferry writes (logs, errors, reports) passes through
 * `scrubSecrets`. The patterns below also catch secrets pgferry never parsed, such as a
 * connection string echoed back by a library.
 */
const MASK = '******';
/** A secret shorter than this would mask ordinary words; such passwords are still never printed by pgferry's own code. */
const MIN_MASKED_LENGTH = 3;

const registered = new Set<string>();

export function registerSecret(secret: string | undefined): void {
  if (secret !== undefined && secret.length >= MIN_MASKED_LENGTH) registered.add(secret);
}

const URL_USERINFO = /(postgres(?:ql)?:\/\/?[^:/@\s]*):[^@\s]*@/gi;
const KEYWORD_PASSWORD = /\b(password|sslpassword)(\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]+)/gi;
/**
 * SQL that sets one: CREATE ROLE … PASSWORD '…', a user mapping's OPTIONS ("password" '…'), as a
 * schema change shows it: a plain, an E'' (backslash escapes) or a dollar-quoted literal, and one
 * cut short by a shortened log line (no closing quote: masked to the end).
 */
const SQL_PASSWORD = /\b(password"?)(\s+)(E'(?:[^'\\]|\\.|'')*(?:'|$)|'(?:[^']|'')*(?:'|$)|\$(\w*)\$[\s\S]*?(?:\$\4\$|$))/gim;

/**
 * For pgferry's own reports, built only from redacted connection descriptions: masks
 * connection-string passwords by their shape, without touching words that happen to equal a
 * password (a password "public" must not blank out the schema name).
 */
export function scrubPatterns(text: string): string {
  return text.replace(URL_USERINFO, `$1:${MASK}@`).replace(KEYWORD_PASSWORD, `$1$2${MASK}`).replace(SQL_PASSWORD, `$1$2'${MASK}'`);
}

/** For everything else (errors, logs, text from libraries and servers): every known secret, anywhere. */
export function scrubSecrets(text: string): string {
  // Registered secrets first: a password holding "@" would otherwise be cut short by the URL pattern.
  const secrets = [...registered].sort((a, b) => b.length - a.length);
  let out = text;
  for (const secret of secrets) {
    // The secret as written, percent-encoded (URLs a library might echo) and JSON-escaped (a
    // log line is JSON: a password holding " or \ appears there escaped).
    for (const form of new Set([secret, encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)])) out = out.split(form).join(MASK);
  }
  return scrubPatterns(out);
}

/**
 * The process list shows a process's arguments to every user of the machine, for as long as it
 * runs: a password in --source stays readable there for days of sync. The arguments are
 * rewritten with every connection-string password masked (Node overwrites the argument memory
 * the kernel shows; Linux and macOS). True when there was something to mask.
 */
export function hidePasswordsFromProcessList(argv: readonly string[]): boolean {
  const masked = argv.map((arg) => scrubPatterns(arg));
  if (masked.every((arg, i) => arg === argv[i])) return false;
  try {
    process.title = masked.join(' ');
  } catch {
    return false;
  }
  return true;
}
