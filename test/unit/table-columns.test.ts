import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tableColumns } from '../../src/copy/table-columns.js';
import type { SourceTable } from '../../src/copy/source-tables.js';
import { PgferryError } from '../../src/errors.js';

const table = (name: string, columns: Array<[string, string]>): SourceTable => ({
  oid: 1,
  schema: 'public',
  name,
  qname: `public.${name}`,
  bytes: 0,
  pages: 0,
  columns: columns.map(([n, type]) => ({ name: n, type, binarySafe: true })),
  intKey: undefined,
});
const onTarget = (entries: Record<string, Array<[string, string]>>) =>
  new Map(Object.entries(entries).map(([qname, columns]) => [qname, new Map(columns)]));

describe('copy: the columns each table carries', () => {
  const orders = table('orders', [
    ['id', 'integer'],
    ['tier', 'text'],
  ]);

  it('names every source column, binary where both sides agree on the types', () => {
    const both = tableColumns(
      [orders],
      new Set(),
      onTarget({
        'public.orders': [
          ['id', 'integer'],
          ['tier', 'text'],
        ],
      }),
      {
        following: false,
        resumed: false,
      },
    );
    assert.deepEqual(both.jobsByTable.get('public.orders'), { columns: ['id', 'tier'], binary: true });
    const differs = tableColumns(
      [orders],
      new Set(),
      onTarget({
        'public.orders': [
          ['id', 'bigint'],
          ['tier', 'text'],
        ],
      }),
      {
        following: false,
        resumed: false,
      },
    );
    assert.deepEqual(differs.jobsByTable.get('public.orders'), { columns: ['id', 'tier'], binary: false });
  });

  it('refuses a column the target lacks when no stream follows, and defers the table when one does', () => {
    const lacking = onTarget({ 'public.orders': [['id', 'integer']] });
    assert.throws(
      () => tableColumns([orders], new Set(), lacking, { following: false, resumed: false }),
      (e: unknown) => e instanceof PgferryError && e.code === 'schema-conflict' && /has no column tier/.test(e.message),
    );
    const { deferred } = tableColumns([orders], new Set(), lacking, { following: true, resumed: false });
    assert.deepEqual([...deferred], [['public.orders', 'the source has column(s) tier the target has not yet']]);
  });

  it('a table missing on the target is a fault, unless the stream of a resumed copy dropped it', () => {
    assert.throws(
      () => tableColumns([orders], new Set(), onTarget({}), { following: true, resumed: false }),
      (e: unknown) => e instanceof PgferryError && /missing after pre-data/.test(e.message),
    );
    const resumed = tableColumns([orders], new Set(), onTarget({}), { following: true, resumed: true });
    assert.deepEqual(resumed.jobsByTable.get('public.orders'), { columns: [], binary: false });
    const gone = tableColumns([orders], new Set(['public.orders']), onTarget({}), { following: true, resumed: true });
    assert.deepEqual(gone.jobsByTable.get('public.orders'), { columns: [], binary: false });
    assert.equal(gone.deferred.size, 0);
  });
});
