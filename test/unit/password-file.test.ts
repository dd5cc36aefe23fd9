import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { lookupPassword, type PasswordLookup } from '../../src/config/password-file.js';

const dir = mkdtempSync(join(tmpdir(), 'pgferry-passfile-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function fileWith(lines: string[], mode = 0o600): string {
  const path = join(dir, `pgpass-${Math.random().toString(36).slice(2)}`);
  writeFileSync(path, `${lines.join('\n')}\n`, { mode });
  return path;
}

const socketLookup: PasswordLookup = { host: '/var/run/postgresql', port: 5432, database: 'app', user: 'u', hostIsDefaultSocket: true };

describe('lookupPassword', () => {
  test('the default socket directory matches "localhost" lines, as in libpq', () => {
    const file = fileWith(['localhost:5432:app:u:socketpw']);
    assert.equal(
      lookupPassword(socketLookup, { PGPASSFILE: file }, () => undefined),
      'socketpw',
    );
  });

  test('a socket directory given explicitly matches only its own path', () => {
    const file = fileWith(['localhost:5432:app:u:socketpw', '/sock:5432:app:u:pathpw']);
    const lookup = { ...socketLookup, host: '/sock', hostIsDefaultSocket: false };
    assert.equal(
      lookupPassword(lookup, { PGPASSFILE: file }, () => undefined),
      'pathpw',
    );
  });

  test('a file others can read is ignored with a warning that says how to fix it', () => {
    const file = fileWith(['*:*:*:*:loosepw'], 0o644);
    const warnings: string[] = [];
    assert.equal(
      lookupPassword(socketLookup, { PGPASSFILE: file }, (m) => warnings.push(m)),
      undefined,
    );
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /chmod 0600/);
    assert.ok(!warnings[0]!.includes('loosepw'));
  });

  test('HOME/.pgpass is the default file', () => {
    const home = mkdtempSync(join(dir, 'home-'));
    writeFileSync(join(home, '.pgpass'), '*:*:*:u:homepw\n', { mode: 0o600 });
    assert.equal(
      lookupPassword(socketLookup, { HOME: home }, () => undefined),
      'homepw',
    );
  });
});
