import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { PgferryError } from '../errors.js';
import { systemErrorCode } from '../plumbing/index.js';
import type { ConnectionSpec } from './connection-spec.js';

/**
 * What one attempt to connect asks of TLS. libpq's `prefer` and `allow` try one way and fall
 * back to the other, so they yield two attempts; `connect` makes them in order.
 */
export type TlsAttempt = { readonly tls: false } | { readonly tls: true; readonly options: ConnectionOptions };

export function tlsAttempts(spec: ConnectionSpec): TlsAttempt[] {
  // libpq ignores sslmode on Unix sockets: they never carry TLS.
  if (spec.host.startsWith('/') && spec.hostaddr === undefined) return [{ tls: false }];
  // Made only for the modes that use it: it reads the client certificate and key, which a
  // connection with sslmode=disable must not depend on.
  const unverified = (): TlsAttempt => ({ tls: true, options: { ...clientCertificate(spec), rejectUnauthorized: false } });
  switch (spec.sslmode) {
    case 'disable':
      return [{ tls: false }];
    case 'allow':
      return [{ tls: false }, unverified()];
    case 'prefer':
      return [unverified(), { tls: false }];
    case 'require':
      // libpq: with a root certificate at hand, `require` verifies the chain like verify-ca.
      return [verified(spec, false, true)];
    case 'verify-ca':
      return [verified(spec, false, false)];
    case 'verify-full':
      return [verified(spec, true, false)];
  }
}

function verified(spec: ConnectionSpec, checkHostName: boolean, onlyIfRootCertGiven: boolean): TlsAttempt {
  const defaultRoot = join(homedir(), '.postgresql', 'root.crt');
  const rootPath = spec.sslrootcert ?? defaultRoot;
  const options: ConnectionOptions = { ...clientCertificate(spec) };
  if (onlyIfRootCertGiven && !(spec.sslrootcert !== undefined || existsSync(defaultRoot))) {
    return { tls: true, options: { ...options, rejectUnauthorized: false } };
  }
  if (rootPath !== 'system') {
    options.ca = readTlsFile(spec, rootPath, 'sslrootcert', 'root certificate');
  }
  options.rejectUnauthorized = true;
  if (checkHostName) {
    if (isIP(spec.host) === 0) options.servername = spec.host;
  } else {
    options.checkServerIdentity = () => undefined;
  }
  return { tls: true, options };
}

function clientCertificate(spec: ConnectionSpec): ConnectionOptions {
  const defaultCert = join(homedir(), '.postgresql', 'postgresql.crt');
  const certPath = spec.sslcert ?? (existsSync(defaultCert) ? defaultCert : undefined);
  if (certPath === undefined) return {};
  const keyPath = spec.sslkey ?? join(homedir(), '.postgresql', 'postgresql.key');
  const key = readTlsFile(spec, keyPath, 'sslkey', 'client key');
  refuseExposedKey(spec, keyPath);
  return { cert: readTlsFile(spec, certPath, 'sslcert', 'client certificate'), key };
}

/**
 * libpq refuses a private key others may read: 0600 or less when the user owns it, 0640 or
 * less when root does (a key shared with a group of services). pgferry does the same, so a
 * key that works here works with psql and the other way round.
 */
function refuseExposedKey(spec: ConnectionSpec, path: string): void {
  const stats = statSync(path);
  const limit = stats.uid === 0 ? 0o640 : 0o600;
  if ((stats.mode & 0o777 & ~limit) === 0) return;
  throw new PgferryError(
    'usage',
    `${spec.side}: private key file "${path}" has group or world access (mode ${(stats.mode & 0o777).toString(8).padStart(4, '0')})`,
    {
      side: spec.side,
      fix: `chmod 0600 ${path} (or 0640 if root owns it and a group needs it), as libpq requires`,
    },
  );
}

function readTlsFile(spec: ConnectionSpec, path: string, keyword: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const reason = systemErrorCode(error) === 'ENOENT' ? 'does not exist' : 'cannot be read';
    throw new PgferryError('usage', `${spec.side}: ${what} file "${path}" ${reason} (sslmode=${spec.sslmode})`, {
      side: spec.side,
      fix:
        keyword === 'sslrootcert'
          ? `point ${keyword}= at the CA certificate that signed the server's certificate, use sslrootcert=system for the operating system's trusted roots, or lower sslmode`
          : `point ${keyword}= at a readable file`,
    });
  }
}
