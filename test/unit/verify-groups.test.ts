import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { groupSmallTables, SMALL_TABLE_BYTES } from '../../src/verify/check-group.js';
import type { TableToVerify } from '../../src/verify/tables.js';

const table = (i: number, bytes: number): TableToVerify => ({
  name: `public.t${i}`,
  schema: 'public',
  table: `t${i}`,
  sql: `"public"."t${i}"`,
  bytes,
  estimatedRows: 10,
  readable: true,
  columns: [{ name: 'id', sql: '"id"', type: 'integer', hashed: 'int4' }],
  key: [{ name: 'id', sql: '"id"', type: 'integer', hashed: 'int4' }],
});

describe('verify: small tables compared in groups', () => {
  test('every table lands in exactly one group, in the order given', () => {
    const tables = Array.from({ length: 150 }, (_, i) => table(i, 8192));
    const groups = groupSmallTables(tables);
    assert.deepEqual(groups.flat(), tables);
    // At most 64 tables a group: one statement stays a reasonable size.
    assert.deepEqual(
      groups.map((g) => g.length),
      [64, 64, 22],
    );
  });

  test('a group holds about 64 MB at most, and a group is never empty', () => {
    const tables = Array.from({ length: 20 }, (_, i) => table(i, SMALL_TABLE_BYTES));
    const groups = groupSmallTables(tables);
    assert.deepEqual(
      groups.map((g) => g.length),
      [8, 8, 4],
    );
    assert.deepEqual(groupSmallTables([]), []);
    assert.deepEqual(
      groupSmallTables([table(1, 100 * 1024 * 1024)]).map((g) => g.length),
      [1],
    );
  });
});
