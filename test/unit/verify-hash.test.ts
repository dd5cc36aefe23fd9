import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TYPED_HASHES, nullHash, rowHashSql, typedColumnSql, typedHashOf, type HashColumn } from '../../src/verify/hash-sql.js';

const col = (sql: string, hashed: HashColumn['hashed'] = null): HashColumn => ({ sql, hashed });

describe('verify row hash: which types are hashed from their values', () => {
  test('the built-in types whose equal values are exactly their equal text outputs', () => {
    assert.deepEqual(
      [21, 23, 20, 26, 16, 2950, 25, 1043].map((oid) => typedHashOf(oid, -1)),
      ['int2', 'int4', 'int8', 'oid', 'bool', 'uuid', 'text', 'text'],
    );
    assert.equal(Object.keys(TYPED_HASHES).length, 9);
  });

  test('char(n) is hashed from its value only with a declared n: a bare bpchar prints the blanks it was given', () => {
    assert.equal(typedHashOf(1042, 84 + 4), 'bpchar');
    assert.equal(typedHashOf(1042, 1 + 4), 'bpchar');
    assert.equal(typedHashOf(1042, -1), null);
  });

  test('types whose hash or equality forgets what their text output shows stay text', () => {
    // numeric (1.0 = 1.00), float4/float8 (-0 = 0), timestamp and timestamptz (hashint8's
    // 32-bit fold), date and bytea (no callable extended hash), jsonb, interval, name, char,
    // money, an array, and a user type's (enum, domain) oid.
    for (const oid of [1700, 700, 701, 1114, 1184, 1082, 17, 3802, 114, 1186, 19, 18, 790, 1007, 16_384, 0]) {
      assert.equal(typedHashOf(oid, -1), null, `type oid ${oid}`);
    }
  });

  test("each typed column is hashed by its type's extended hash, seeded with its position", () => {
    assert.equal(typedColumnSql('"a"', 'int2', 1), 'pg_catalog.hashint2extended("a", 1)');
    assert.equal(typedColumnSql('"a"', 'int4', 2), 'pg_catalog.hashint4extended("a", 2)');
    assert.equal(typedColumnSql('"a"', 'oid', 3), 'pg_catalog.hashoidextended("a", 3)');
    assert.equal(typedColumnSql('"a"', 'bool', 4), 'pg_catalog.hashint4extended("a"::pg_catalog.int4, 4)');
    assert.equal(typedColumnSql('"a"', 'uuid', 5), 'pg_catalog.uuid_hash_extended("a", 5)');
    // Bytewise whatever the column's collation.
    assert.equal(typedColumnSql('"a"', 'text', 6), 'pg_catalog.hashtextextended("a" COLLATE "C", 6)');
    assert.equal(typedColumnSql('"a"', 'bpchar', 8), 'pg_catalog.hashbpcharextended("a" COLLATE "C", 8)');
    // hashint8extended folds the high half into the low: the high half is hashed on its own too.
    assert.equal(
      typedColumnSql('"a"', 'int8', 7),
      '(pg_catalog.hashint8extended("a", 7) # pg_catalog.hashint4extended(("a" >> 32)::pg_catalog.int4, -7))',
    );
  });

  test('with no typed column, the typed hash is the text hash of today', () => {
    const columns = [col('"a"'), col('"b"')];
    assert.equal(rowHashSql(columns, 'typed'), rowHashSql(columns, 'hashtext'));
    assert.equal(rowHashSql(columns, 'hashtext'), 'pg_catalog.hashtextextended(ROW("a", "b")::text COLLATE "C", 0)');
  });

  test('typed columns leave the row text; NULLs hash to a constant of their position', () => {
    const sql = rowHashSql([col('"id"', 'int4'), col('"price"'), col('"name"', 'text'), col('"doc"')], 'typed');
    assert.equal(
      sql,
      '(pg_catalog.hashtextextended(ROW("price", "doc")::text COLLATE "C", 0)' +
        ` # coalesce(pg_catalog.hashint4extended("id", 1), ${nullHash(1)}::pg_catalog.int8)` +
        ` # coalesce(pg_catalog.hashtextextended("name" COLLATE "C", 3), ${nullHash(3)}::pg_catalog.int8))`,
    );
    assert.equal(
      rowHashSql([col('"id"', 'int8')], 'typed'),
      `coalesce(${typedColumnSql('"id"', 'int8', 1)}, ${nullHash(1)}::pg_catalog.int8)`,
    );
  });

  test('NULL constants are distinct per position and fit a bigint', () => {
    const constants = Array.from({ length: 1600 }, (_, i) => BigInt(nullHash(i + 1)));
    assert.equal(new Set(constants).size, constants.length);
    for (const c of constants) assert.ok(c >= -(2n ** 63n) && c < 2n ** 63n);
  });

  test('hashtext and md5 hash every column by text, whatever the column types', () => {
    const columns = [col('"id"', 'int4'), col('"name"', 'text')];
    assert.equal(rowHashSql(columns, 'hashtext'), 'pg_catalog.hashtextextended(ROW("id", "name")::text COLLATE "C", 0)');
    assert.equal(rowHashSql(columns, 'md5'), `('x' || pg_catalog.substr(pg_catalog.md5(ROW("id", "name")::text), 1, 16))::bit(64)::bigint`);
  });
});
