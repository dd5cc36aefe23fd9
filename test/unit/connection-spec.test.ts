import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { describeConnection, endpointOf, type ConnectionSpec } from '../../src/config/connection-spec.js';

function spec(overrides: Partial<ConnectionSpec> = {}): ConnectionSpec {
  return {
    side: 'source',
    host: 'db.example.com',
    hostaddr: undefined,
    port: 5432,
    database: 'app',
    user: 'alice',
    password: 'very-secret-pw',
    passwordSource: 'connection string',
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

describe('describeConnection', () => {
  test('a TCP host as a URL without the password', () => {
    assert.equal(describeConnection(spec()), 'postgres://alice@db.example.com:5432/app');
  });

  test('never contains the password, whatever the sslmode or host', () => {
    for (const sslmode of ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const) {
      for (const host of ['db.example.com', '/var/run/postgresql', '::1', '10.1.2.3']) {
        const text = describeConnection(spec({ sslmode, host }));
        assert.ok(!text.includes('very-secret-pw'), text);
        assert.ok(!text.includes(encodeURIComponent('very-secret-pw')), text);
      }
    }
  });

  test('sslmode is shown unless it is the default prefer', () => {
    assert.equal(describeConnection(spec({ sslmode: 'verify-full' })), 'postgres://alice@db.example.com:5432/app?sslmode=verify-full');
    assert.equal(describeConnection(spec({ sslmode: 'disable' })), 'postgres://alice@db.example.com:5432/app?sslmode=disable');
  });

  test('a socket directory goes into the host parameter', () => {
    assert.equal(
      describeConnection(spec({ host: '/var/run/postgresql', port: 5433 })),
      'postgres://alice@/app?host=%2Fvar%2Frun%2Fpostgresql&port=5433',
    );
  });

  test('a socket directory with an sslmode joins the query with &', () => {
    assert.equal(
      describeConnection(spec({ host: '/tmp', sslmode: 'require' })),
      'postgres://alice@/app?host=%2Ftmp&port=5432&sslmode=require',
    );
  });

  test('an IPv6 address is bracketed', () => {
    assert.equal(describeConnection(spec({ host: '::1', port: 6543 })), 'postgres://alice@[::1]:6543/app');
    assert.equal(describeConnection(spec({ host: 'fe80::1%eth0' })).startsWith('postgres://alice@[fe80::1%eth0]:5432/'), true);
  });

  test('user and database names are percent-encoded', () => {
    assert.equal(describeConnection(spec({ user: 'a@b c', database: 'my db/x' })), 'postgres://a%40b%20c@db.example.com:5432/my%20db%2Fx');
  });
});

describe('endpointOf', () => {
  test('host:port', () => {
    assert.equal(endpointOf(spec({ port: 6000 })), 'db.example.com:6000');
  });

  test('socket path with the socket file name', () => {
    assert.equal(endpointOf(spec({ host: '/tmp', port: 5433 })), 'socket /tmp/.s.PGSQL.5433');
  });

  test('IPv6 in brackets', () => {
    assert.equal(endpointOf(spec({ host: '2001:db8::1' })), '[2001:db8::1]:5432');
  });

  test('IPv4', () => {
    assert.equal(endpointOf(spec({ host: '127.0.0.1' })), '127.0.0.1:5432');
  });

  test('never contains the password', () => {
    for (const host of ['db.example.com', '/tmp', '::1']) assert.ok(!endpointOf(spec({ host })).includes('very-secret-pw'));
  });
});
