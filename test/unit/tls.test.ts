import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { ConnectionSpec } from '../../src/config/connection-spec.js';
import { tlsAttempts, type TlsAttempt } from '../../src/config/tls.js';
import { PgferryError } from '../../src/errors.js';

/*
 * tls.ts looks for ~/.postgresql/root.crt and ~/.postgresql/postgresql.crt; os.homedir()
 * follows HOME, so every test runs with HOME at an empty temporary directory.
 */
const savedHome = process.env.HOME;
let dir = '';
let home = '';
let rootCert = '';
let clientCert = '';
let clientKey = '';

const DUMMY_CA = '-----BEGIN CERTIFICATE-----\nTUlJQmR1bW15Q0E=\n-----END CERTIFICATE-----\n';
const DUMMY_CLIENT = '-----BEGIN CERTIFICATE-----\nTUlJQmR1bW15Y2xpZW50\n-----END CERTIFICATE-----\n';
const DUMMY_KEY = '-----BEGIN PRIVATE KEY-----\nTUlJQmR1bW15a2V5\n-----END PRIVATE KEY-----\n';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'pgferry-tls-'));
  home = join(dir, 'home');
  mkdirSync(home);
  rootCert = join(dir, 'ca.pem');
  clientCert = join(dir, 'client.crt');
  clientKey = join(dir, 'client.key');
  writeFileSync(rootCert, DUMMY_CA);
  writeFileSync(clientCert, DUMMY_CLIENT);
  writeFileSync(clientKey, DUMMY_KEY, { mode: 0o600 });
  process.env.HOME = home;
});

beforeEach(() => {
  rmSync(join(home, '.postgresql'), { recursive: true, force: true });
});

after(() => {
  if (savedHome === undefined) delete process.env.HOME;
  else process.env.HOME = savedHome;
  rmSync(dir, { recursive: true, force: true });
});

function spec(overrides: Partial<ConnectionSpec> = {}): ConnectionSpec {
  return {
    side: 'source',
    host: 'db.example.com',
    hostaddr: undefined,
    port: 5432,
    database: 'app',
    user: 'alice',
    password: undefined,
    passwordSource: 'none',
    sslmode: 'prefer',
    sslrootcert: undefined,
    sslcert: undefined,
    sslkey: undefined,
    connectTimeoutSeconds: 10,
    keepalives: true,
    keepalivesIdleSeconds: 60,
    applicationName: 'pgferry',
    options: undefined,
    peerTimeoutMs: 60_000,
    ...overrides,
  };
}

function only(attempts: TlsAttempt[]): ConnectionOptions {
  assert.equal(attempts.length, 1);
  const attempt = attempts[0]!;
  assert.equal(attempt.tls, true);
  if (!attempt.tls) throw new Error('unreachable');
  return attempt.options;
}

function usageFailure(s: ConnectionSpec): PgferryError {
  try {
    tlsAttempts(s);
  } catch (error) {
    assert.ok(error instanceof PgferryError, `expected a PgferryError, got ${String(error)}`);
    assert.equal(error.kind, 'usage');
    return error;
  }
  assert.fail('expected a usage error');
}

function writeDefault(name: string, text: string): string {
  mkdirSync(join(home, '.postgresql'), { recursive: true });
  const path = join(home, '.postgresql', name);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

describe('tlsAttempts: attempts per sslmode', () => {
  test('disable: plain only', () => {
    assert.deepEqual(tlsAttempts(spec({ sslmode: 'disable' })), [{ tls: false }]);
  });

  test('allow: plain first, then unverified TLS', () => {
    assert.deepEqual(tlsAttempts(spec({ sslmode: 'allow' })), [{ tls: false }, { tls: true, options: { rejectUnauthorized: false } }]);
  });

  test('prefer: unverified TLS first, then plain', () => {
    assert.deepEqual(tlsAttempts(spec({ sslmode: 'prefer' })), [{ tls: true, options: { rejectUnauthorized: false } }, { tls: false }]);
  });

  test('disable/allow/prefer never read a root certificate, even a missing one', () => {
    for (const sslmode of ['disable', 'allow', 'prefer'] as const) {
      const attempts = tlsAttempts(spec({ sslmode, sslrootcert: join(dir, 'missing.pem') }));
      for (const attempt of attempts) if (attempt.tls) assert.equal(attempt.options.ca, undefined);
    }
  });

  test('require without any root certificate: TLS without verification', () => {
    const options = only(tlsAttempts(spec({ sslmode: 'require' })));
    assert.equal(options.rejectUnauthorized, false);
    assert.equal(options.ca, undefined);
  });

  test('require with sslrootcert: verifies the chain like verify-ca, not the host name', () => {
    const options = only(tlsAttempts(spec({ sslmode: 'require', sslrootcert: rootCert })));
    assert.equal(options.ca, DUMMY_CA);
    assert.equal(options.rejectUnauthorized, true);
    assert.equal(typeof options.checkServerIdentity, 'function');
    assert.equal(options.servername, undefined);
  });

  test('require with ~/.postgresql/root.crt: verifies the chain with it', () => {
    writeDefault('root.crt', DUMMY_CA);
    const options = only(tlsAttempts(spec({ sslmode: 'require' })));
    assert.equal(options.ca, DUMMY_CA);
    assert.equal(options.rejectUnauthorized, true);
  });

  test('require with a missing sslrootcert file is a usage error', () => {
    const error = usageFailure(spec({ sslmode: 'require', sslrootcert: join(dir, 'nope.pem') }));
    assert.match(error.message, /root certificate file ".*nope\.pem" does not exist \(sslmode=require\)/);
  });

  test('verify-ca with sslrootcert: ca set, chain verified, host name not checked', () => {
    const options = only(tlsAttempts(spec({ sslmode: 'verify-ca', sslrootcert: rootCert })));
    assert.equal(options.ca, DUMMY_CA);
    assert.equal(options.rejectUnauthorized, true);
    assert.equal(typeof options.checkServerIdentity, 'function');
    assert.equal(options.checkServerIdentity?.('other.example.com', {} as never), undefined);
    assert.equal(options.servername, undefined);
  });

  test('verify-ca with ~/.postgresql/root.crt and no sslrootcert', () => {
    writeDefault('root.crt', DUMMY_CA);
    const options = only(tlsAttempts(spec({ sslmode: 'verify-ca' })));
    assert.equal(options.ca, DUMMY_CA);
  });

  test('verify-full with a DNS name: servername is the host, host name checked by Node', () => {
    const options = only(tlsAttempts(spec({ sslmode: 'verify-full', sslrootcert: rootCert })));
    assert.equal(options.ca, DUMMY_CA);
    assert.equal(options.rejectUnauthorized, true);
    assert.equal(options.servername, 'db.example.com');
    assert.equal(options.checkServerIdentity, undefined);
  });

  test('verify-full with an IPv4 address: no servername (SNI takes no IP addresses)', () => {
    const options = only(tlsAttempts(spec({ sslmode: 'verify-full', sslrootcert: rootCert, host: '127.0.0.1' })));
    assert.equal(options.servername, undefined);
    assert.equal(options.checkServerIdentity, undefined);
    assert.equal(options.rejectUnauthorized, true);
  });

  test('verify-full with an IPv6 address: no servername', () => {
    const options = only(tlsAttempts(spec({ sslmode: 'verify-full', sslrootcert: rootCert, host: '::1' })));
    assert.equal(options.servername, undefined);
    assert.equal(options.checkServerIdentity, undefined);
  });

  test('sslrootcert=system: the operating system roots, verified', () => {
    for (const sslmode of ['verify-ca', 'verify-full', 'require'] as const) {
      const options = only(tlsAttempts(spec({ sslmode, sslrootcert: 'system' })));
      assert.equal(options.ca, undefined);
      assert.equal(options.rejectUnauthorized, true);
    }
  });
});

describe('tlsAttempts: missing files', () => {
  for (const sslmode of ['verify-ca', 'verify-full'] as const) {
    test(`${sslmode} with a missing sslrootcert file is a usage error naming the file and the fix`, () => {
      const path = join(dir, 'missing-ca.pem');
      const error = usageFailure(spec({ sslmode, sslrootcert: path, side: 'target' }));
      assert.equal(error.side, 'target');
      assert.ok(error.message.startsWith('target: '), error.message);
      assert.ok(error.message.includes(path), error.message);
      assert.match(error.message, /does not exist/);
      assert.match(error.message, new RegExp(`sslmode=${sslmode}`));
      assert.match(error.fix ?? '', /sslrootcert=/);
      assert.match(error.fix ?? '', /sslrootcert=system/);
    });

    test(`${sslmode} without sslrootcert and without ~/.postgresql/root.crt is a usage error`, () => {
      const error = usageFailure(spec({ sslmode }));
      assert.ok(error.message.includes(join(home, '.postgresql', 'root.crt')), error.message);
    });
  }

  test('a root certificate path that is a directory cannot be read', () => {
    const error = usageFailure(spec({ sslmode: 'verify-ca', sslrootcert: dir }));
    assert.match(error.message, /cannot be read/);
  });

  test('a missing sslcert file is a usage error about the client certificate', () => {
    const error = usageFailure(spec({ sslmode: 'verify-ca', sslrootcert: rootCert, sslcert: join(dir, 'nocert.crt'), sslkey: clientKey }));
    assert.match(error.message, /client certificate file/);
    assert.match(error.fix ?? '', /sslcert=/);
  });

  test('a missing sslkey file is a usage error about the client key', () => {
    const error = usageFailure(spec({ sslmode: 'verify-ca', sslrootcert: rootCert, sslcert: clientCert, sslkey: join(dir, 'nokey.key') }));
    assert.match(error.message, /client key file/);
    assert.match(error.fix ?? '', /sslkey=/);
  });
});

describe('tlsAttempts: client certificates', () => {
  test('sslcert and sslkey are sent with verify-full', () => {
    const options = only(tlsAttempts(spec({ sslmode: 'verify-full', sslrootcert: rootCert, sslcert: clientCert, sslkey: clientKey })));
    assert.equal(options.cert, DUMMY_CLIENT);
    assert.equal(options.key, DUMMY_KEY);
  });

  test('sslcert and sslkey are sent with require, verified or not', () => {
    const unverified = only(tlsAttempts(spec({ sslmode: 'require', sslcert: clientCert, sslkey: clientKey })));
    assert.equal(unverified.cert, DUMMY_CLIENT);
    assert.equal(unverified.key, DUMMY_KEY);
    assert.equal(unverified.rejectUnauthorized, false);
  });

  test('~/.postgresql/postgresql.crt and postgresql.key are used when present', () => {
    writeDefault('postgresql.crt', DUMMY_CLIENT);
    writeDefault('postgresql.key', DUMMY_KEY);
    const options = only(tlsAttempts(spec({ sslmode: 'verify-ca', sslrootcert: rootCert })));
    assert.equal(options.cert, DUMMY_CLIENT);
    assert.equal(options.key, DUMMY_KEY);
  });

  test('no client certificate anywhere: none is sent', () => {
    const options = only(tlsAttempts(spec({ sslmode: 'verify-ca', sslrootcert: rootCert })));
    assert.equal(options.cert, undefined);
    assert.equal(options.key, undefined);
  });

  // libpq loads sslcert/sslkey for every TLS connection, whatever the sslmode; prefer is the
  // default, so "sslcert=… sslkey=…" alone must still authenticate with the certificate.
  test('sslcert and sslkey are sent on the TLS attempt of prefer and allow too', () => {
    for (const sslmode of ['prefer', 'allow'] as const) {
      const attempts = tlsAttempts(spec({ sslmode, sslcert: clientCert, sslkey: clientKey }));
      const tls = attempts.find((a) => a.tls);
      assert.ok(tls !== undefined && tls.tls);
      assert.equal(tls.options.cert, DUMMY_CLIENT, `sslmode=${sslmode}`);
      assert.equal(tls.options.key, DUMMY_KEY, `sslmode=${sslmode}`);
    }
  });
});

describe('tlsAttempts: Unix sockets', () => {
  test('a socket connection never uses TLS, whatever sslmode says (as libpq)', () => {
    for (const sslmode of ['prefer', 'require', 'verify-full'] as const) {
      assert.deepEqual(tlsAttempts(spec({ host: '/var/run/postgresql', sslmode })), [{ tls: false }]);
    }
  });
});

describe('tlsAttempts: files only the modes that use them', () => {
  test('sslmode=disable never reads the default client certificate or key, even unreadable ones', () => {
    writeDefault('postgresql.crt', DUMMY_CLIENT);
    // A directory where the key should be: reading it fails, whoever we are (root reads any file).
    mkdirSync(join(home, '.postgresql', 'postgresql.key'));
    assert.deepEqual(tlsAttempts(spec({ sslmode: 'disable' })), [{ tls: false }]);
    assert.ok(usageFailure(spec({ sslmode: 'prefer' })).message.includes('postgresql.key'), 'prefer does read them');
  });
});

describe('tlsAttempts: private key permissions, as libpq', () => {
  test('a key others may read is refused with the chmod that fixes it; 0600 is accepted', () => {
    const exposed = join(dir, 'exposed.key');
    writeFileSync(exposed, DUMMY_KEY, { mode: 0o644 });
    chmodSync(exposed, 0o644);
    const refused = usageFailure(spec({ sslmode: 'require', sslcert: clientCert, sslkey: exposed }));
    assert.match(refused.message, /has group or world access \(mode 0644\)/);
    assert.match(refused.fix ?? '', /chmod 0600/);
    chmodSync(exposed, 0o600);
    assert.doesNotThrow(() => tlsAttempts(spec({ sslmode: 'require', sslcert: clientCert, sslkey: exposed })));
  });
});
