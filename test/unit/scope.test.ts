import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EVERYTHING, Scope, type QualifiedName, type ScopeFilter } from '../../src/catalog/scope.js';
import { PgferryError } from '../../src/errors.js';

const TABLES: QualifiedName[] = [
  { schema: 'public', name: 'users' },
  { schema: 'public', name: 'orders' },
  { schema: 'public', name: 'tmp_import' },
  { schema: 'sales', name: 'orders' },
  { schema: 'sales', name: 'invoices' },
  { schema: 'app_v1', name: 'events' },
  { schema: 'app_v2', name: 'events' },
  { schema: 'audit', name: 'log' },
];

function scope(filter: Partial<ScopeFilter>): Scope {
  return new Scope({ ...EVERYTHING, ...filter });
}

function included(filter: Partial<ScopeFilter>): string[] {
  const s = scope(filter);
  return TABLES.filter((t) => s.includes(t)).map((t) => `${t.schema}.${t.name}`);
}

describe('Scope.includes', () => {
  test('no filter: everything', () => {
    assert.equal(included({}).length, TABLES.length);
    const everything = new Scope(EVERYTHING);
    assert.ok(TABLES.every((t) => everything.includes(t)));
  });

  test('include schemas by name and glob', () => {
    assert.deepEqual(included({ includeSchemas: ['sales'] }), ['sales.orders', 'sales.invoices']);
    assert.deepEqual(included({ includeSchemas: ['app_*'] }), ['app_v1.events', 'app_v2.events']);
    assert.deepEqual(included({ includeSchemas: ['sales', 'audit'] }), ['sales.orders', 'sales.invoices', 'audit.log']);
  });

  test('exclude schemas', () => {
    assert.deepEqual(included({ excludeSchemas: ['public', 'app_*'] }), ['sales.orders', 'sales.invoices', 'audit.log']);
  });

  test('an undotted table pattern matches the table name in any schema', () => {
    assert.deepEqual(included({ includeTables: ['orders'] }), ['public.orders', 'sales.orders']);
    assert.deepEqual(included({ includeTables: ['*s'] }), [
      'public.users',
      'public.orders',
      'sales.orders',
      'sales.invoices',
      'app_v1.events',
      'app_v2.events',
    ]);
  });

  test('a dotted table pattern matches schema.table', () => {
    assert.deepEqual(included({ includeTables: ['sales.orders'] }), ['sales.orders']);
    assert.deepEqual(included({ includeTables: ['public.*'] }), ['public.users', 'public.orders', 'public.tmp_import']);
    assert.deepEqual(included({ includeTables: ['*.events'] }), ['app_v1.events', 'app_v2.events']);
    assert.deepEqual(included({ includeTables: ['app_v?.ev*'] }), ['app_v1.events', 'app_v2.events']);
  });

  test('a dotted pattern does not match a bare table name', () => {
    assert.deepEqual(included({ includeTables: ['public.orders'] }), ['public.orders']);
  });

  test('brace alternatives', () => {
    assert.deepEqual(included({ includeTables: ['{users,invoices}'] }), ['public.users', 'sales.invoices']);
  });

  test('excluded tables, dotted and undotted', () => {
    assert.deepEqual(included({ excludeTables: ['tmp_*', 'sales.orders', 'events', 'log'] }), [
      'public.users',
      'public.orders',
      'sales.invoices',
    ]);
  });

  test('an exclude wins over an include of the same table', () => {
    assert.deepEqual(included({ includeTables: ['public.*'], excludeTables: ['public.tmp_*'] }), ['public.users', 'public.orders']);
    assert.deepEqual(included({ includeTables: ['orders'], excludeTables: ['orders'] }), []);
  });

  test('an excluded schema wins over an included table', () => {
    assert.deepEqual(included({ includeTables: ['orders'], excludeSchemas: ['sales'] }), ['public.orders']);
  });

  test('an excluded schema wins over an included schema', () => {
    assert.deepEqual(included({ includeSchemas: ['app_*'], excludeSchemas: ['app_v1'] }), ['app_v2.events']);
  });

  test('schema and table includes combine (both must hold)', () => {
    assert.deepEqual(included({ includeSchemas: ['public'], includeTables: ['orders'] }), ['public.orders']);
  });

  test('patterns are case-sensitive, as PostgreSQL names are', () => {
    assert.deepEqual(included({ includeTables: ['Users'] }), []);
    assert.ok(scope({ includeTables: ['Users'] }).includes({ schema: 'public', name: 'Users' }));
  });

  test('names starting with a dot match a wildcard table pattern', () => {
    assert.ok(scope({ includeTables: ['*'] }).includes({ schema: 'public', name: '.hidden' }));
  });
});

describe('Scope.assertPatternsMatch', () => {
  function usageFailure(run: () => void): PgferryError {
    try {
      run();
    } catch (error) {
      assert.ok(error instanceof PgferryError, `expected a PgferryError, got ${String(error)}`);
      assert.equal(error.kind, 'usage');
      return error;
    }
    assert.fail('expected a usage error');
  }

  test('patterns that all match: no error', () => {
    const s = scope({ includeSchemas: ['public', 'sales'], includeTables: ['orders', 'sales.invoices'] });
    s.assertPatternsMatch(TABLES, 'the source database "app"');
  });

  test('no patterns: no error, even with no tables', () => {
    new Scope(EVERYTHING).assertPatternsMatch([], 'the source database "app"');
  });

  test('an include-table pattern that matches nothing names the pattern and where', () => {
    const s = scope({ includeTables: ['orders', 'ordrs'] });
    const error = usageFailure(() => s.assertPatternsMatch(TABLES, 'the source database "app"'));
    assert.equal(error.message, '--include-table "ordrs" matches no table in the source database "app"');
    assert.match(error.fix ?? '', /spelling/);
  });

  test('a dotted include-table pattern whose schema is wrong matches nothing', () => {
    const s = scope({ includeTables: ['public.invoices'] });
    const error = usageFailure(() => s.assertPatternsMatch(TABLES, 'here'));
    assert.match(error.message, /"public\.invoices"/);
  });

  test('an include-schema pattern that matches no schema with tables', () => {
    const s = scope({ includeSchemas: ['sales', 'slaes'] });
    const error = usageFailure(() => s.assertPatternsMatch(TABLES, 'the source database "app"'));
    assert.equal(error.message, '--include-schema "slaes" matches no schema with tables in the source database "app"');
    assert.match(error.fix ?? '', /spelling/);
  });

  test('a glob include-schema pattern that matches', () => {
    scope({ includeSchemas: ['app_*'] }).assertPatternsMatch(TABLES, 'here');
  });

  test('an include-table pattern against an empty table list fails', () => {
    usageFailure(() => scope({ includeTables: ['*'] }).assertPatternsMatch([], 'here'));
  });
});
