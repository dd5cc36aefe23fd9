import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ObjectKind, SchemaObject, Section } from '../../src/schema/model.js';
import { orderObjects } from '../../src/schema/order.js';

function object(id: string, kind: ObjectKind, section: Section, dependsOn: string[] = []): SchemaObject {
  return {
    id,
    identity: `${kind} ${id}`,
    kind,
    name: id,
    schema: 'public',
    section,
    statements: [],
    dependsOn: new Set(dependsOn),
    table: undefined,
  };
}

const ids = (objects: SchemaObject[]) => objects.map((o) => o.id);

describe('orderObjects', () => {
  test('every object comes after what it depends on, whatever the input order', () => {
    const view = object('v', 'view', 'pre-data', ['f']);
    const fn = object('f', 'function', 'pre-data', ['t']);
    const table = object('t', 'table', 'pre-data', ['s']);
    const schema = object('s', 'schema', 'pre-data');
    const ordered = ids(orderObjects([view, fn, table, schema]));
    assert.deepEqual(ordered, ['s', 't', 'f', 'v']);
  });

  test('pre-data before post-data; among free objects, by kind then name', () => {
    const idx = object('a_idx', 'index', 'post-data', ['b']);
    const b = object('b', 'table', 'pre-data');
    const a = object('a', 'table', 'pre-data');
    const fn = object('z_fn', 'function', 'pre-data');
    assert.deepEqual(ids(orderObjects([idx, b, a, fn])), ['z_fn', 'a', 'b', 'a_idx']);
  });

  test('a pre-data object that needs a post-data one pulls it, and its needs, into pre-data', () => {
    const table = object('t', 'table', 'pre-data');
    const pk = object('t_pkey', 'constraint', 'post-data', ['t']);
    const view = object('v', 'view', 'pre-data', ['t_pkey']); // GROUP BY relying on the key
    const other = object('other_idx', 'index', 'post-data', ['t']);
    const ordered = orderObjects([view, pk, table, other]);
    assert.deepEqual(ids(ordered), ['t', 't_pkey', 'v', 'other_idx']);
    assert.equal(ordered.find((o) => o.id === 't_pkey')!.section, 'pre-data');
    assert.equal(ordered.find((o) => o.id === 'other_idx')!.section, 'post-data');
  });

  test('dependencies on objects outside the set are ignored; cycles are reported', () => {
    assert.deepEqual(ids(orderObjects([object('t', 'table', 'pre-data', ['pg_type:23'])])), ['t']);
    assert.throws(
      () => orderObjects([object('a', 'view', 'pre-data', ['b']), object('b', 'view', 'pre-data', ['a'])]),
      /circular dependency among a, b|circular dependency among b, a/,
    );
  });

  test('ten thousand objects keep every dependency', () => {
    const many: SchemaObject[] = [];
    for (let i = 0; i < 5000; i++) {
      many.push(object(`t${i}`, 'table', 'pre-data'));
      many.push(object(`i${i}`, 'index', 'post-data', [`t${i}`]));
    }
    const ordered = orderObjects(many);
    const position = new Map(ordered.map((o, i) => [o.id, i]));
    for (let i = 0; i < 5000; i++) assert.ok(position.get(`t${i}`)! < position.get(`i${i}`)!);
  });
});
