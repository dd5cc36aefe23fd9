import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { registerSecret, scrubSecrets } from '../../src/config/secrets.js';

// The registry of secrets is per process; each test file runs in its own process, and the
// secrets registered below are distinct so that the order of tests does not matter.

describe('scrubSecrets: patterns mask secrets nobody registered', () => {
  test('password in URL userinfo', () => {
    assert.equal(scrubSecrets('cannot reach postgres://alice:unreg1@db:5432/app'), 'cannot reach postgres://alice:******@db:5432/app');
  });

  test('postgresql:// and upper-case schemes', () => {
    assert.equal(scrubSecrets('POSTGRESQL://bob:unreg2@h/db'), 'POSTGRESQL://bob:******@h/db');
  });

  test('several URLs on one line', () => {
    assert.equal(
      scrubSecrets('postgres://a:unreg3@h1/x -> postgres://b:unreg4@h2/y'),
      'postgres://a:******@h1/x -> postgres://b:******@h2/y',
    );
  });

  test('a password set in SQL, as a captured schema change shows it', () => {
    assert.equal(
      scrubSecrets(`CREATE ROLE app LOGIN PASSWORD 'it''s-secret'; ALTER USER bob WITH ENCRYPTED password E'x\\y'`),
      `CREATE ROLE app LOGIN PASSWORD '******'; ALTER USER bob WITH ENCRYPTED password '******'`,
    );
    assert.equal(
      scrubSecrets(`CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'u', password 'pw1')`),
      `CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'u', password '******')`,
    );
  });

  test('a password set in SQL whatever its quoting, and one cut short', () => {
    assert.equal(scrubSecrets(`ALTER ROLE a PASSWORD E'ab\\'cdef'`), `ALTER ROLE a PASSWORD '******'`);
    assert.equal(scrubSecrets('ALTER ROLE a PASSWORD $$hunter22$$;'), `ALTER ROLE a PASSWORD '******';`);
    assert.equal(scrubSecrets(`OPTIONS ("password" 'x1')`), `OPTIONS ("password" '******')`);
    assert.equal(scrubSecrets(`CREATE ROLE a PASSWORD 'hunter2…`), `CREATE ROLE a PASSWORD '******'`);
  });

  test('an empty user name with a password', () => {
    assert.equal(scrubSecrets('postgres://:unreg5@h/db'), 'postgres://:******@h/db');
  });

  test('URLs without a password are left alone', () => {
    const text = 'postgres://alice@db:5432/app and postgres://db/app?sslmode=require';
    assert.equal(scrubSecrets(text), text);
  });

  test('keyword password=', () => {
    assert.equal(scrubSecrets('host=h password=unreg6 user=u'), 'host=h password=****** user=u');
  });

  test('keyword password with spaces around = and a quoted value with spaces and escapes', () => {
    assert.equal(scrubSecrets(String.raw`host=h password = 'un reg\'7 x' user=u`), 'host=h password = ****** user=u');
  });

  test('case-insensitive keyword, and sslpassword', () => {
    assert.equal(scrubSecrets('PASSWORD=unreg8 sslpassword=unreg9'), 'PASSWORD=****** sslpassword=******');
  });

  test('password= as a URL query parameter', () => {
    const out = scrubSecrets('postgres://h/db?password=unreg10&sslmode=require');
    assert.ok(!out.includes('unreg10'), out);
  });

  test('text without secrets is unchanged', () => {
    const text = 'copied 10 tables in 3 s; the password was accepted';
    assert.equal(scrubSecrets(text), text);
  });
});

describe('scrubSecrets: registered secrets', () => {
  test('are masked anywhere in the text', () => {
    registerSecret('Tr0ub4dor&3');
    assert.equal(scrubSecrets('auth failed for Tr0ub4dor&3, retrying (Tr0ub4dor&3)'), 'auth failed for ******, retrying (******)');
  });

  test('are masked in JSON and other shapes the patterns do not know', () => {
    registerSecret('json-secret-11');
    assert.equal(scrubSecrets('{"password":"json-secret-11"}'), '{"password":"******"}');
  });

  test('are masked in percent-encoded form', () => {
    registerSecret('p@ss w/rd:12');
    const encoded = encodeURIComponent('p@ss w/rd:12');
    assert.equal(scrubSecrets(`uri user:${encoded}@host`), 'uri user:******@host');
  });

  test('a secret containing another is masked whole', () => {
    registerSecret('abc13');
    registerSecret('abc13-longer');
    assert.equal(scrubSecrets('value abc13-longer'), 'value ******');
    assert.equal(scrubSecrets('value abc13'), 'value ******');
  });

  test('secrets shorter than three characters are not registered (they would mask ordinary words)', () => {
    registerSecret('ab');
    registerSecret('');
    registerSecret(undefined);
    assert.equal(scrubSecrets('a table named ab'), 'a table named ab');
  });

  test('a three-character secret is registered', () => {
    registerSecret('xq7');
    assert.equal(scrubSecrets('see xq7'), 'see ******');
  });

  test('regex special characters in a secret are taken literally', () => {
    registerSecret('a.*b(c)$');
    assert.equal(scrubSecrets('x a.*b(c)$ y aXXb(c)'), 'x ****** y aXXb(c)');
  });

  // The URL parser takes the last "@" as the end of the userinfo, so "p@ss14" is a valid
  // unencoded password there. Masking must not leave part of it behind.
  test('a registered password containing "@" echoed in a raw URL is masked whole', () => {
    registerSecret('p@ss14');
    const out = scrubSecrets('connecting to postgres://u:p@ss14@host/db');
    assert.ok(!out.includes('ss14'), out);
  });
});

describe('scrubSecrets: JSON-escaped secrets', () => {
  test('masks a registered password holding a quote or a backslash as a JSON log line writes it', () => {
    registerSecret('pa"ss\\word14');
    const line = JSON.stringify({ msg: 'auth with pa"ss\\word14 failed' });
    assert.equal(scrubSecrets(line).includes('word14'), false, scrubSecrets(line));
  });
});
