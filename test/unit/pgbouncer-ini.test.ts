import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { findDatabaseEntry, parseSettings, pointsTo, repoint } from '../../src/pgbouncer/index.js';
import { poolModeFinding } from '../../src/check/pgbouncer.js';

const INI = [
  ';; PgBouncer configuration',
  '[databases]',
  '; the application',
  "app = host=10.0.0.5 port=5432 dbname=shop pool_size=40 password='s3 cr\\'et'",
  '"odd name" = host=old dbname=x',
  'other = host=10.0.0.6',
  '* = host=fallback',
  '',
  '[pgbouncer]',
  'listen_port = 6432',
  'app = not a database line',
  '',
].join('\n');

describe('PgBouncer configuration file', () => {
  test('finds an entry in [databases] only, quoted names too, and reads its settings', () => {
    const app = findDatabaseEntry(INI, 'app');
    assert.ok(app);
    assert.equal(app.line, 3);
    assert.deepEqual(app.settings, [
      ['host', '10.0.0.5'],
      ['port', '5432'],
      ['dbname', 'shop'],
      ['pool_size', '40'],
      ['password', "s3 cr'et"],
    ]);
    assert.equal(findDatabaseEntry(INI, 'odd name')?.line, 4);
    assert.equal(findDatabaseEntry(INI, 'missing'), undefined);
    assert.equal(findDatabaseEntry('[pgbouncer]\napp = host=x\n', 'app'), undefined);
  });

  test('defaults as PgBouncer has them: port 5432, dbname the entry name', () => {
    assert.deepEqual(pointsTo(findDatabaseEntry(INI, 'other')!), { host: '10.0.0.6', port: 5432, dbname: 'other' });
  });

  test('repoints one entry: host, port and dbname replaced or added, its other settings and every other line kept', () => {
    const app = findDatabaseEntry(INI, 'app')!;
    const out = repoint(INI, app, { host: '10.0.1.9', port: 6543, dbname: 'shop_new' });
    const lines = out.split('\n');
    assert.equal(lines[3], "app = host=10.0.1.9 port=6543 dbname=shop_new pool_size=40 password='s3 cr\\'et'");
    assert.deepEqual(
      lines.filter((_, i) => i !== 3),
      INI.split('\n').filter((_, i) => i !== 3),
    );
    assert.deepEqual(findDatabaseEntry(out, 'app')!.settings.at(-1), ['password', "s3 cr'et"]);
    const other = repoint(INI, findDatabaseEntry(INI, 'other')!, { host: 'h', port: 1, dbname: 'd' }).split('\n')[5];
    assert.equal(other, 'other = host=h port=1 dbname=d');
  });

  test('keeps a quoted name and Windows line ends', () => {
    const crlf = INI.replace(/\n/g, '\r\n');
    const out = repoint(crlf, findDatabaseEntry(crlf, 'odd name')!, { host: 'new', port: 5433, dbname: 'x' });
    assert.equal(out.split('\n')[4], '"odd name" = host=new dbname=x port=5433\r');
  });

  test('refuses settings it cannot read rather than guess', () => {
    assert.throws(() => parseSettings("host='unterminated"), /unterminated quote/);
    assert.throws(() => parseSettings('=x'), /cannot read/);
  });
});

describe('check: what the pool mode means for the pause', () => {
  test('session pooling is a warning: PAUSE waits for every client to leave', () => {
    const finding = poolModeFinding('app', 'session');
    assert.equal(finding.severity, 'warning');
    assert.match(finding.fix, /pool_mode = transaction/);
  });
  test('transaction and statement pooling are fine', () => {
    assert.equal(poolModeFinding('app', 'transaction').severity, 'info');
    assert.match(poolModeFinding('app', 'statement').message, /running statements/);
  });
});
