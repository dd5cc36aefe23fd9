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

const URL_USERINFO = /(postgres(?:ql)?:\/\/[^:/@\s]*):[^@\s]*@/gi;
const KEYWORD_PASSWORD = /\b(password|sslpassword)(\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]+)/gi;

export function scrubSecrets(text: string): string {
  let out = text.replace(URL_USERINFO, `$1:${MASK}@`).replace(KEYWORD_PASSWORD, `$1$2${MASK}`);
  // Longest first, so a secret containing another is masked whole.
  const secrets = [...registered].sort((a, b) => b.length - a.length);
  for (const secret of secrets) out = out.split(secret).join(MASK);
  // Percent-encoded forms appear in URLs a library might echo.
  for (const secret of secrets) {
    const encoded = encodeURIComponent(secret);
    if (encoded !== secret) out = out.split(encoded).join(MASK);
  }
  return out;
}
