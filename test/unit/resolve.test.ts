import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { resolveConnection } from '../../src/config/resolve.js';
import { scrubSecrets } from '../../src/config/secrets.js';
import { PgferryError } from '../../src/errors.js';

/*
 * resolveConnection reads only the environment it is given. Every test passes one whose
 * PGPASSFILE points at a file that does not exist unless the test writes it, so the machine's
 * own ~/.pgpass never leaks in.
 */
let dir = '';
let passfile = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'pgferry-resolve-'));
  passfile = join(dir, 'pgpass');
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function isolated(env: Record<string, string | undefined>): Record<string, string | undefined> {
  return { PGPASSFILE: passfile, ...env };
}

function writePassfile(lines: string[], mode: number): void {
  rmSync(passfile, { force: true });
  writeFileSync(passfile, lines.join('\n') + '\n', { mode: 0o600 });
  chmodSync(passfile, mode);
}

async function usageFailure(promise: Promise<unknown>): Promise<PgferryError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof PgferryError, `expected a PgferryError, got ${String(error)}`);
    assert.equal(error.kind, 'usage');
    return error;
  }
  assert.fail('expected a usage error');
}

/** What defaultHost() in resolve.ts picks for a port: a socket directory where a server listens, else localhost. */
function expectedDefaultHost(port: number): string {
  for (const d of ['/var/run/postgresql', '/tmp']) if (existsSync(`${d}/.s.PGSQL.${port}`)) return d;
  return 'localhost';
}

describe('resolveConnection: where the string comes from', () => {
  test('the given string wins over PGFERRY_SOURCE', async () => {
    const spec = await resolveConnection('source', 'host=given', isolated({ PGFERRY_SOURCE: 'host=fromenv' }));
    assert.equal(spec.host, 'given');
    assert.equal(spec.side, 'source');
  });

  test('PGFERRY_SOURCE when nothing is given', async () => {
    const spec = await resolveConnection('source', undefined, isolated({ PGFERRY_SOURCE: 'host=fromenv', PGFERRY_TARGET: 'host=other' }));
    assert.equal(spec.host, 'fromenv');
  });

  test('PGFERRY_TARGET for the target side', async () => {
    const spec = await resolveConnection('target', undefined, isolated({ PGFERRY_SOURCE: 'host=src', PGFERRY_TARGET: 'host=tgt' }));
    assert.equal(spec.host, 'tgt');
    assert.equal(spec.side, 'target');
  });

  test('a missing source is a usage error that names --source and PGFERRY_SOURCE', async () => {
    const error = await usageFailure(resolveConnection('source', undefined, isolated({})));
    assert.match(error.message, /no source database given/);
    assert.match(error.fix ?? '', /--source/);
    assert.match(error.fix ?? '', /PGFERRY_SOURCE/);
  });

  test('a missing target names --target and PGFERRY_TARGET, even when PGFERRY_SOURCE is set', async () => {
    const error = await usageFailure(resolveConnection('target', undefined, isolated({ PGFERRY_SOURCE: 'host=src' })));
    assert.match(error.message, /no target database given/);
    assert.match(error.fix ?? '', /--target/);
    assert.match(error.fix ?? '', /PGFERRY_TARGET/);
  });

  test('an empty or blank string counts as missing', async () => {
    await usageFailure(resolveConnection('source', '', isolated({})));
    await usageFailure(resolveConnection('source', '   ', isolated({})));
    await usageFailure(resolveConnection('source', undefined, isolated({ PGFERRY_SOURCE: '' })));
  });

  test('a malformed string is a usage error', async () => {
    await usageFailure(resolveConnection('source', 'nonsense', isolated({})));
  });
});

describe('resolveConnection: PG* variables fill in what the string leaves out', () => {
  const env = {
    PGHOST: 'envhost',
    PGHOSTADDR: '10.0.0.9',
    PGPORT: '6000',
    PGDATABASE: 'envdb',
    PGUSER: 'envuser',
    PGSSLMODE: 'require',
    PGSSLROOTCERT: '/env/root.crt',
    PGSSLCERT: '/env/client.crt',
    PGSSLKEY: '/env/client.key',
    PGCONNECT_TIMEOUT: '30',
    PGAPPNAME: 'envapp',
    PGOPTIONS: '-c work_mem=64MB',
  };

  test('every field from the environment', async () => {
    const spec = await resolveConnection('source', 'application_name=x', isolated(env));
    assert.equal(spec.host, 'envhost');
    assert.equal(spec.hostaddr, '10.0.0.9');
    assert.equal(spec.port, 6000);
    assert.equal(spec.database, 'envdb');
    assert.equal(spec.user, 'envuser');
    assert.equal(spec.sslmode, 'require');
    assert.equal(spec.sslrootcert, '/env/root.crt');
    assert.equal(spec.sslcert, '/env/client.crt');
    assert.equal(spec.sslkey, '/env/client.key');
    assert.equal(spec.connectTimeoutSeconds, 30);
    assert.equal(spec.applicationName, 'x');
    assert.equal(spec.options, '-c work_mem=64MB');
  });

  test('the string wins field by field', async () => {
    const spec = await resolveConnection('source', 'postgres://alice@db:5433/app?sslmode=disable', isolated(env));
    assert.equal(spec.host, 'db');
    assert.equal(spec.port, 5433);
    assert.equal(spec.database, 'app');
    assert.equal(spec.user, 'alice');
    assert.equal(spec.sslmode, 'disable');
    // Left out of the string: still from the environment.
    assert.equal(spec.applicationName, 'envapp');
    assert.equal(spec.connectTimeoutSeconds, 30);
  });

  test('PGFERRY_SOURCE also takes PG* fallbacks', async () => {
    const spec = await resolveConnection('source', undefined, isolated({ PGFERRY_SOURCE: 'host=h', PGPORT: '7000', PGUSER: 'u7' }));
    assert.equal(spec.port, 7000);
    assert.equal(spec.user, 'u7');
    assert.equal(spec.database, 'u7');
  });

  test('empty PG* variables count as unset', async () => {
    const spec = await resolveConnection('source', 'host=h', isolated({ PGPORT: '', PGUSER: '', PGSSLMODE: '', PGDATABASE: '' }));
    assert.equal(spec.port, 5432);
    assert.equal(spec.sslmode, 'prefer');
    assert.equal(spec.user, userInfo().username);
  });
});

describe('resolveConnection: defaults', () => {
  test('port 5432, OS user, database = user, sslmode prefer, 10 s timeout, application pgferry', async () => {
    const spec = await resolveConnection('source', 'host=h', isolated({}));
    assert.equal(spec.port, 5432);
    assert.equal(spec.user, userInfo().username);
    assert.equal(spec.database, userInfo().username);
    assert.equal(spec.sslmode, 'prefer');
    assert.equal(spec.connectTimeoutSeconds, 10);
    assert.equal(spec.applicationName, 'pgferry');
    assert.equal(spec.hostaddr, undefined);
    assert.equal(spec.sslrootcert, undefined);
    assert.equal(spec.sslcert, undefined);
    assert.equal(spec.sslkey, undefined);
    assert.equal(spec.options, undefined);
    assert.equal(spec.password, undefined);
    assert.equal(spec.passwordSource, 'none');
  });

  test('database defaults to the user that was given', async () => {
    const spec = await resolveConnection('source', 'host=h user=carol', isolated({}));
    assert.equal(spec.database, 'carol');
  });

  test('host defaults to a socket directory with a server on the port, else localhost', async () => {
    const spec = await resolveConnection('source', 'port=54999', isolated({}));
    assert.equal(spec.host, expectedDefaultHost(54999));
  });

  // libpq (connectOptions2): an empty dbname is replaced by the user name, like a missing one.
  test("an empty dbname ('') means the user name, as in libpq", async () => {
    const spec = await resolveConnection('source', "host=h user=dave dbname=''", isolated({}));
    assert.equal(spec.database, 'dave');
  });
});

describe('resolveConnection: connect_timeout follows libpq', () => {
  for (const [given, expected] of [
    ['0', 0],
    ['1', 2],
    ['0.5', 2],
    ['2', 2],
    ['7.9', 7],
    ['120', 120],
  ] as const) {
    test(`${given} => ${expected}`, async () => {
      const spec = await resolveConnection('source', `host=h connect_timeout=${given}`, isolated({}));
      assert.equal(spec.connectTimeoutSeconds, expected);
    });
  }

  test('PGCONNECT_TIMEOUT=0 waits forever', async () => {
    assert.equal((await resolveConnection('source', 'host=h', isolated({ PGCONNECT_TIMEOUT: '0' }))).connectTimeoutSeconds, 0);
  });

  for (const bad of ['-1', 'abc', 'ten']) {
    test(`connect_timeout=${bad} is a usage error`, async () => {
      const error = await usageFailure(resolveConnection('target', `host=h connect_timeout=${bad}`, isolated({})));
      assert.match(error.message, /^target connect_timeout ".*" is not a number of seconds$/);
      assert.match(error.fix ?? '', /whole number of seconds/);
    });
  }
});

describe('resolveConnection: bad values', () => {
  for (const bad of ['0', '65536', 'abc', '54.3', '-5']) {
    test(`port ${bad} is a usage error naming the fix`, async () => {
      const error = await usageFailure(resolveConnection('source', `host=h port=${bad}`, isolated({})));
      assert.equal(error.message, `source port "${bad}" is not a port number`);
      assert.match(error.fix ?? '', /between 1 and 65535/);
    });
  }

  test('a bad PGPORT is refused too', async () => {
    const error = await usageFailure(resolveConnection('target', 'host=h', isolated({ PGPORT: 'postgres' })));
    assert.match(error.message, /^target port "postgres"/);
  });

  test('ports 1 and 65535 are fine', async () => {
    assert.equal((await resolveConnection('source', 'host=h port=1', isolated({}))).port, 1);
    assert.equal((await resolveConnection('source', 'host=h port=65535', isolated({}))).port, 65535);
  });

  for (const bad of ['required', 'REQUIRE', 'on', 'verify_full']) {
    test(`sslmode ${bad} is a usage error listing the modes`, async () => {
      const error = await usageFailure(resolveConnection('source', `host=h sslmode=${bad}`, isolated({})));
      assert.equal(error.message, `source sslmode "${bad}" is not one libpq knows`);
      assert.match(error.fix ?? '', /disable, allow, prefer, require, verify-ca, verify-full/);
    });
  }

  test('a bad PGSSLMODE is refused', async () => {
    await usageFailure(resolveConnection('source', 'host=h', isolated({ PGSSLMODE: 'yes' })));
  });

  test('every libpq sslmode is accepted', async () => {
    for (const mode of ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']) {
      assert.equal((await resolveConnection('source', `host=h sslmode=${mode}`, isolated({}))).sslmode, mode);
    }
  });
});

describe('resolveConnection: passwords', () => {
  test('from the connection string', async () => {
    const spec = await resolveConnection('source', 'postgres://u:fromstring1@h/db', isolated({ PGPASSWORD: 'fromenv1' }));
    assert.equal(spec.password, 'fromstring1');
    assert.equal(spec.passwordSource, 'connection string');
  });

  test('from PGPASSWORD when the string has none', async () => {
    const spec = await resolveConnection('source', 'host=h user=u', isolated({ PGPASSWORD: 'fromenv2' }));
    assert.equal(spec.password, 'fromenv2');
    assert.equal(spec.passwordSource, 'PGPASSWORD');
  });

  test('none anywhere', async () => {
    const spec = await resolveConnection('source', 'host=nopass.example user=u dbname=d', isolated({}));
    assert.equal(spec.password, undefined);
    assert.equal(spec.passwordSource, 'none');
  });

  test('from the password file (mode 0600), matching host, port, database and user', async () => {
    writePassfile(
      ['# comment line', 'otherhost:5432:appdb:alice:wrongpw', 'dbhost:5433:appdb:alice:wrongport', 'dbhost:5432:appdb:alice:filepw1'],
      0o600,
    );
    const spec = await resolveConnection('source', 'host=dbhost dbname=appdb user=alice', isolated({}));
    assert.equal(spec.password, 'filepw1');
    assert.equal(spec.passwordSource, 'password file');
    // Learned passwords are secrets from then on.
    assert.equal(scrubSecrets('auth with filepw1 failed'), 'auth with ****** failed');
  });

  // libpq: "The password field from the first line that matches the current connection
  // parameters will be used." A wildcard line after an exact one must not win.
  test('the first matching line of the password file wins, as in libpq', async () => {
    writePassfile(['dbhost:5432:appdb:alice:firstpw', '*:*:*:alice:laterpw'], 0o600);
    const spec = await resolveConnection('source', 'host=dbhost dbname=appdb user=alice', isolated({}));
    assert.equal(spec.password, 'firstpw');
  });

  test('wildcard entries in the password file', async () => {
    writePassfile(['*:*:*:alice:wildcardpw'], 0o600);
    const spec = await resolveConnection('source', 'host=anyhost port=6000 dbname=x user=alice', isolated({}));
    assert.equal(spec.password, 'wildcardpw');
    assert.equal(spec.passwordSource, 'password file');
  });

  test('the password file is used with the resolved defaults (database = user, port 5432)', async () => {
    writePassfile(['h.example:5432:erin:erin:defaultspw'], 0o600);
    const spec = await resolveConnection('source', 'host=h.example user=erin', isolated({}));
    assert.equal(spec.password, 'defaultspw');
  });

  test('escaped colons in the password file', async () => {
    writePassfile([String.raw`h:5432:db:u:pa\:ss`], 0o600);
    const spec = await resolveConnection('source', 'host=h dbname=db user=u', isolated({}));
    assert.equal(spec.password, 'pa:ss');
  });

  test('no matching line: no password', async () => {
    writePassfile(['dbhost:5432:appdb:alice:filepw1'], 0o600);
    const spec = await resolveConnection('source', 'host=dbhost dbname=appdb user=bob', isolated({}));
    assert.equal(spec.password, undefined);
    assert.equal(spec.passwordSource, 'none');
  });

  test('a password file readable by group or others (0644) is ignored, as libpq does', async () => {
    writePassfile(['*:*:*:*:insecurepw'], 0o644);
    const spec = await resolveConnection('source', 'host=h dbname=d user=u', isolated({}));
    assert.equal(spec.password, undefined);
    assert.equal(spec.passwordSource, 'none');
  });

  test('PGPASSWORD wins over the password file', async () => {
    writePassfile(['*:*:*:*:filepw2'], 0o600);
    const spec = await resolveConnection('source', 'host=h dbname=d user=u', isolated({ PGPASSWORD: 'envpw3' }));
    assert.equal(spec.password, 'envpw3');
    assert.equal(spec.passwordSource, 'PGPASSWORD');
  });

  test('the connection string wins over the password file', async () => {
    writePassfile(['*:*:*:*:filepw3'], 0o600);
    const spec = await resolveConnection('source', 'host=h dbname=d user=u password=strpw4', isolated({}));
    assert.equal(spec.password, 'strpw4');
    assert.equal(spec.passwordSource, 'connection string');
  });

  test('passwords from the string and PGPASSWORD are registered as secrets', async () => {
    await resolveConnection('source', 'host=h password=registered-in-string', isolated({}));
    await resolveConnection('target', 'host=h', isolated({ PGPASSWORD: 'registered-from-env' }));
    assert.equal(scrubSecrets('x registered-in-string y'), 'x ****** y');
    assert.equal(scrubSecrets('x registered-from-env y'), 'x ****** y');
  });
});

describe('resolveConnection: TCP keepalives', () => {
  test('on by default, first probe after a minute of silence', async () => {
    const spec = await resolveConnection('source', 'host=h', isolated({}));
    assert.equal(spec.keepalives, true);
    assert.equal(spec.keepalivesIdleSeconds, 60);
  });

  test('keepalives=0 turns them off and keepalives_idle sets the first probe, in both spellings', async () => {
    const off = await resolveConnection('source', 'host=h keepalives=0', isolated({}));
    assert.equal(off.keepalives, false);
    const idle = await resolveConnection(
      'target',
      'postgres://h/db?keepalives_idle=15&keepalives_interval=5&keepalives_count=3',
      isolated({}),
    );
    assert.equal(idle.keepalives, true);
    assert.equal(idle.keepalivesIdleSeconds, 15);
  });

  test('a value libpq would refuse is bad usage, named with its fix', async () => {
    for (const [text, keyword] of [
      ['host=h keepalives=yes', 'keepalives'],
      ['host=h keepalives_idle=-1', 'keepalives_idle'],
      ['host=h keepalives_interval=abc', 'keepalives_interval'],
      ['host=h keepalives_count=1.5', 'keepalives_count'],
    ] as const) {
      await assert.rejects(resolveConnection('source', text, isolated({})), (error: unknown) => {
        assert.ok(error instanceof PgferryError && error.kind === 'usage', String(error));
        assert.match(error.message, new RegExp(keyword));
        assert.ok(error.fix, 'a fix is given');
        return true;
      });
    }
  });
});
