import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConnectionString } from '../../src/config/connection-string.js';
import { PgferryError } from '../../src/errors.js';

/** Runs `parse` expecting a usage error, and returns it for further checks. */
function usageFailure(text: string, side: 'source' | 'target' = 'source'): PgferryError {
  try {
    parseConnectionString(text, side);
  } catch (error) {
    assert.ok(error instanceof PgferryError, `expected a PgferryError, got ${String(error)}`);
    assert.equal(error.kind, 'usage');
    return error;
  }
  assert.fail(`expected ${JSON.stringify(text)} to be refused`);
}

/** Everything a user would see of an error: its message and its fix. */
function shown(error: PgferryError): string {
  return `${error.message}\n${error.fix ?? ''}`;
}

describe('parseConnectionString: URLs', () => {
  test('postgres:// with user, password, host, port and database', () => {
    assert.deepEqual(parseConnectionString('postgres://alice:s3cret@db.example.com:5433/app', 'source'), {
      user: 'alice',
      password: 's3cret',
      host: 'db.example.com',
      port: '5433',
      dbname: 'app',
    });
  });

  test('postgresql:// is the same scheme, case-insensitively, with surrounding spaces trimmed', () => {
    assert.deepEqual(parseConnectionString('  PostgreSQL://bob@host/db  ', 'target'), {
      user: 'bob',
      host: 'host',
      dbname: 'db',
    });
  });

  test('percent-encoded user name, password and database are decoded', () => {
    const params = parseConnectionString('postgres://us%40er:p%40ss%3Aw%2Frd%20%25@h/my%20db', 'source');
    assert.equal(params.user, 'us@er');
    assert.equal(params.password, 'p@ss:w/rd %');
    assert.equal(params.dbname, 'my db');
  });

  // libpq would split at the first "@"; the WHATWG parser takes the last, which is what the user meant.
  test('a password with a literal @ is split at the last @', () => {
    const params = parseConnectionString('postgres://u:p@ss@host/db', 'source');
    assert.equal(params.password, 'p@ss');
    assert.equal(params.host, 'host');
  });

  test('non-ASCII passwords survive', () => {
    assert.equal(parseConnectionString('postgres://u:S%C3%ABcret@h/db', 'source').password, 'Sëcret');
  });

  test('IPv6 host loses its brackets', () => {
    const params = parseConnectionString('postgres://u@[::1]:5433/db', 'source');
    assert.equal(params.host, '::1');
    assert.equal(params.port, '5433');
  });

  test('IPv6 host without port', () => {
    assert.equal(parseConnectionString('postgresql://[2001:db8::7]/db', 'source').host, '2001:db8::7');
  });

  test('percent-encoded socket directory as host', () => {
    assert.deepEqual(parseConnectionString('postgres://%2Fvar%2Frun%2Fpostgresql/db', 'source'), {
      host: '/var/run/postgresql',
      dbname: 'db',
    });
  });

  test('host given as query parameter (socket directory)', () => {
    assert.deepEqual(parseConnectionString('postgres:///db?host=/tmp&port=6543', 'source'), {
      host: '/tmp',
      port: '6543',
      dbname: 'db',
    });
  });

  test('missing parts are left out, not set to empty strings', () => {
    assert.deepEqual(parseConnectionString('postgres://', 'source'), {});
    assert.deepEqual(parseConnectionString('postgres://host', 'source'), { host: 'host' });
    assert.deepEqual(parseConnectionString('postgres://host/', 'source'), { host: 'host' });
    assert.deepEqual(parseConnectionString('postgres://u:@host/', 'source'), { user: 'u', host: 'host' });
  });

  test('query parameters: sslmode, sslrootcert, connect_timeout, application_name, options', () => {
    const params = parseConnectionString(
      'postgres://h/db?sslmode=verify-full&sslrootcert=/etc/ssl/ca.pem&connect_timeout=5&application_name=mig&options=-c%20search_path%3Dapp',
      'source',
    );
    assert.deepEqual(params, {
      host: 'h',
      dbname: 'db',
      sslmode: 'verify-full',
      sslrootcert: '/etc/ssl/ca.pem',
      connect_timeout: '5',
      application_name: 'mig',
      options: '-c search_path=app',
    });
  });

  test('ssl=true means sslmode=require (the JDBC spelling libpq accepts)', () => {
    assert.deepEqual(parseConnectionString('postgresql://u@h/db?ssl=true', 'source'), {
      user: 'u',
      host: 'h',
      dbname: 'db',
      sslmode: 'require',
    });
  });

  test('ssl with any other value is an unknown parameter', () => {
    const error = usageFailure('postgres://h/db?ssl=false');
    assert.match(error.message, /unknown parameter "ssl"/);
  });

  test('password given as a query parameter', () => {
    assert.equal(parseConnectionString('postgres://u@h/db?password=x%26y', 'source').password, 'x&y');
  });

  // libpq decodes only %XX in URI query values (conninfo_uri_decode); "+" stays a plus sign.
  test('a "+" in a query value is a literal plus, as in libpq', () => {
    const params = parseConnectionString('postgres://u@h/db?password=a+b&application_name=my+app', 'source');
    assert.equal(params.password, 'a+b');
    assert.equal(params.application_name, 'my+app');
  });
});

describe('parseConnectionString: key=value strings', () => {
  test('plain pairs', () => {
    assert.deepEqual(parseConnectionString('host=db port=5433 dbname=app user=alice password=pw', 'source'), {
      host: 'db',
      port: '5433',
      dbname: 'app',
      user: 'alice',
      password: 'pw',
    });
  });

  test('spaces around = and between pairs', () => {
    assert.deepEqual(parseConnectionString('  host =  db\tport= 5433   dbname =app  ', 'source'), {
      host: 'db',
      port: '5433',
      dbname: 'app',
    });
  });

  test("single-quoted values keep spaces and unescape \\' and \\\\", () => {
    const params = parseConnectionString(String.raw`password='it\'s a \\secret' application_name='my app'`, 'source');
    assert.equal(params.password, String.raw`it's a \secret`);
    assert.equal(params.application_name, 'my app');
  });

  test('an empty quoted value is the empty string', () => {
    assert.deepEqual(parseConnectionString("host=h password='' dbname=db", 'source'), {
      host: 'h',
      password: '',
      dbname: 'db',
    });
  });

  test('backslash escapes in unquoted values', () => {
    assert.equal(parseConnectionString(String.raw`password=a\ b\\c host=h`, 'source').password, String.raw`a b\c`);
  });

  test('a later pair overrides an earlier one', () => {
    assert.equal(parseConnectionString('port=1 port=2', 'source').port, '2');
  });

  test('values may contain = signs', () => {
    assert.equal(parseConnectionString('options=-csearch_path=app host=h', 'source').options, '-csearch_path=app');
  });
});

describe('parseConnectionString: errors', () => {
  test('unknown keyword in a key=value string names it and lists the known ones', () => {
    const error = usageFailure('host=h passwd=secret1');
    assert.match(error.message, /^source connection string has an unknown parameter "passwd"$/);
    assert.match(error.fix ?? '', /password/);
    assert.ok(!shown(error).includes('secret1'));
  });

  test('unknown query parameter in a URL', () => {
    const error = usageFailure('postgres://u:secret2@h/db?sslmod=require', 'target');
    assert.match(error.message, /^target connection string has an unknown parameter "sslmod"$/);
    assert.ok(!shown(error).includes('secret2'));
  });

  test('unterminated quote', () => {
    const error = usageFailure("host=h password='abc123secret");
    assert.match(error.message, /quoted value of "password" has no closing quote/);
    assert.ok(!shown(error).includes('abc123secret'));
  });

  test('garbage text', () => {
    const error = usageFailure('just some words');
    assert.match(error.message, /neither a postgres:\/\/ URL nor a list of key=value pairs/);
    assert.match(error.fix ?? '', /postgres:\/\/user@host:5432\/dbname/);
  });

  test('empty text', () => {
    usageFailure('');
    usageFailure('   ');
  });

  test('a key without a value', () => {
    const error = usageFailure('host=h user');
    assert.match(error.message, /expected "key=value" near "user"/);
  });

  test('a value without a key', () => {
    usageFailure('host=h =value');
  });

  test('a key with a forgotten = does not show the password that follows it', () => {
    const error = usageFailure('host=h password hunter2xyz');
    assert.ok(!shown(error).includes('hunter2xyz'), shown(error));
  });

  test('several hosts in a URL', () => {
    const error = usageFailure('postgres://h1,h2/db');
    assert.match(error.message, /several hosts/);
  });

  test('several hosts with ports in a URL', () => {
    usageFailure('postgres://u:pw@h1:5432,h2:5433/db');
  });

  test('a URL that cannot be parsed does not echo the password', () => {
    const error = usageFailure('postgres://u:pass#word99@host:99999/db');
    assert.ok(!shown(error).includes('word99'), shown(error));
    assert.ok(!shown(error).includes('pass#word99'), shown(error));
  });

  test('an unencoded "/" in the password is refused without showing any of it', () => {
    const error = usageFailure('postgres://u:pa/ss99word@host/db');
    assert.match(error.message, /an "@" follows the host/);
    assert.ok(!shown(error).includes('ss99word'), shown(error));
  });

  test('an unencoded "?" in the password is refused without showing any of it', () => {
    const error = usageFailure('postgres://u:pa?ss98word@host/db');
    assert.ok(!shown(error).includes('ss98word'), shown(error));
  });

  test('invalid percent-encoding in the password is refused without showing it', () => {
    const error = usageFailure('postgres://u:pa%zzsecret@host/db');
    assert.match(error.message, /password holds an invalid percent-encoding/);
    assert.ok(!shown(error).includes('pa%zzsecret'));
    assert.ok(!shown(error).includes('zzsecret'));
  });

  test('invalid percent-encoding in the database name', () => {
    const error = usageFailure('postgres://u@host/d%zz');
    assert.match(error.message, /database name holds an invalid percent-encoding/);
  });

  // An unquoted password with a space: the part after the space is taken for a key.
  test('a malformed string never shows part of an unquoted password', () => {
    const error = usageFailure('host=h password=correct horse user=alice');
    assert.ok(!shown(error).includes('horse'), shown(error));
  });

  // A URL with one slash missing is not recognised as a URL and is parsed as key=value text.
  test('a mistyped URL never shows its password', () => {
    const error = usageFailure('postgres:/u:hunter2@h/db?sslmode=require');
    assert.ok(!shown(error).includes('hunter2'), shown(error));
  });
});
