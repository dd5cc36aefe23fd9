import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { selectDatabases, type DatabaseEntry } from '../../src/instance/index.js';
import { PgferryError } from '../../src/errors.js';

const INSTANCE: DatabaseEntry[] = [
  { name: 'template0', allowsConnections: false, isTemplate: true },
  { name: 'template1', allowsConnections: true, isTemplate: true },
  { name: 'postgres', allowsConnections: true, isTemplate: false },
  { name: 'shop', allowsConnections: true, isTemplate: false },
  { name: 'crm', allowsConnections: true, isTemplate: false },
  { name: 'analytics', allowsConnections: true, isTemplate: false },
  { name: 'app_template', allowsConnections: true, isTemplate: true },
];

describe('selectDatabases', () => {
  test('by default: every database but the templates and the maintenance database, in name order', () => {
    assert.deepEqual(selectDatabases(INSTANCE, { include: [], exclude: [] }), ['analytics', 'crm', 'shop']);
  });
  test('excludes win, globs match names', () => {
    assert.deepEqual(selectDatabases(INSTANCE, { include: [], exclude: ['ana*'] }), ['crm', 'shop']);
    assert.deepEqual(selectDatabases(INSTANCE, { include: ['s*', 'crm'], exclude: ['shop'] }), ['crm']);
  });
  test('the maintenance database and templates only when named exactly, not by a glob', () => {
    assert.deepEqual(selectDatabases(INSTANCE, { include: ['*'], exclude: [] }), ['analytics', 'crm', 'shop']);
    assert.deepEqual(selectDatabases(INSTANCE, { include: ['*', 'postgres', 'app_template'], exclude: [] }), [
      'analytics',
      'app_template',
      'crm',
      'postgres',
      'shop',
    ]);
  });
  test('a pattern that names nothing, a database without connections, or nothing left: a usage error naming the fix', () => {
    assert.throws(
      () => selectDatabases(INSTANCE, { include: ['shpo'], exclude: [] }),
      (e: unknown) => e instanceof PgferryError && e.code === 'usage' && /"shpo" matches no database/.test(e.message),
    );
    assert.throws(
      () => selectDatabases(INSTANCE, { include: ['template0'], exclude: [] }),
      (e: unknown) => e instanceof PgferryError && /allows no connections/.test(e.message),
    );
    assert.throws(
      () => selectDatabases(INSTANCE, { include: [], exclude: ['*'] }),
      (e: unknown) => e instanceof PgferryError && /no database on the source is left/.test(e.message),
    );
  });
});
