import { MinHeap } from './min-heap.js';
import type { ObjectKind, SchemaObject } from './model.js';

/** Among objects free to go, a stable order that reads like a hand-written script. */
const KIND_RANK: Record<ObjectKind, number> = {
  schema: 0,
  extension: 1,
  collation: 2,
  'enum type': 3,
  'composite type': 4,
  'range type': 4,
  domain: 5,
  function: 6,
  aggregate: 7,
  sequence: 8,
  table: 9,
  'partition attach': 10,
  'sequence owner': 11,
  default: 12,
  view: 13,
  'materialized view': 14,
  index: 20,
  'index attach': 21,
  constraint: 22,
  'replica identity': 23,
  trigger: 24,
  rule: 25,
  'row security': 26,
  policy: 27,
  statistics: 28,
  owner: 29,
  privileges: 30,
  'default privileges': 31,
  'database setting': 32,
};

/**
 * Orders objects so each comes after everything it depends on: pre-data before post-data,
 * then dependencies (Kahn's algorithm), ties broken by kind and name so the same database
 * always yields the same script. A pre-data object that needs a post-data one (a view that
 * relies on a primary key for GROUP BY) pulls that object, and what it needs, into pre-data.
 */
export function orderObjects(objects: readonly SchemaObject[]): SchemaObject[] {
  const byId = new Map(objects.map((o) => [o.id, o]));
  const promoted = promoteForPreData(objects, byId);
  const sectionOf = (o: SchemaObject) => (promoted.has(o.id) ? 'pre-data' : o.section);

  const pending = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const o of objects) {
    const deps = [...o.dependsOn].filter((d) => byId.has(d) && d !== o.id);
    pending.set(o.id, deps.length);
    for (const d of deps) {
      const list = dependents.get(d);
      if (list) list.push(o.id);
      else dependents.set(d, [o.id]);
    }
  }
  const rank = (o: SchemaObject) => (sectionOf(o) === 'pre-data' ? 0 : 100) + KIND_RANK[o.kind];
  const compare = (a: SchemaObject, b: SchemaObject) => rank(a) - rank(b) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

  const ready = new MinHeap(compare);
  for (const o of objects) if (pending.get(o.id) === 0) ready.push(o);
  const ordered: SchemaObject[] = [];
  while (ready.size > 0) {
    const next = ready.pop()!;
    ordered.push(sectionOf(next) === next.section ? next : { ...next, section: 'pre-data' });
    for (const dependentId of dependents.get(next.id) ?? []) {
      const left = pending.get(dependentId)! - 1;
      pending.set(dependentId, left);
      if (left === 0) ready.push(byId.get(dependentId)!);
    }
  }
  if (ordered.length < objects.length) {
    const stuck = objects.filter((o) => (pending.get(o.id) ?? 0) > 0).map((o) => o.name);
    throw new Error(`circular dependency among ${stuck.slice(0, 10).join(', ')}`);
  }
  // Kahn's order already respects dependencies; a final stable pass puts pre-data first
  // without breaking them, since nothing in pre-data depends on post-data after promotion.
  return [...ordered.filter((o) => o.section === 'pre-data'), ...ordered.filter((o) => o.section === 'post-data')];
}

function promoteForPreData(objects: readonly SchemaObject[], byId: Map<string, SchemaObject>): Set<string> {
  const promoted = new Set<string>();
  const visit = (id: string) => {
    const o = byId.get(id);
    if (!o || o.section === 'pre-data' || promoted.has(id)) return;
    promoted.add(id);
    for (const d of o.dependsOn) visit(d);
  };
  for (const o of objects) {
    if (o.section !== 'pre-data') continue;
    for (const d of o.dependsOn) visit(d);
  }
  return promoted;
}
