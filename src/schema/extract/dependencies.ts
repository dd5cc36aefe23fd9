import { address, type ExtractContext } from './context.js';

/**
 * Adds pg_depend's edges between objects pgferry creates. Edges to anything else (built-in
 * types, extension members) need no ordering: those exist before the script runs.
 * Object A depending on excluded object B leaves A out, with the reason.
 */
export async function addDependencies(ctx: ExtractContext): Promise<Array<{ name: string; because: string }>> {
  const edges = await ctx.rows<{ catalog: string; objid: number; refcatalog: string; refobjid: number }>(`
    SELECT classid::regclass::text AS catalog, objid, refclassid::regclass::text AS refcatalog, refobjid
      FROM pg_depend
     WHERE deptype IN ('n', 'a') AND classid <> 0 AND refclassid <> 0`);
  // Extractors may name a dependency by any catalog address (a key's index, a type's array):
  // resolve each to the object that creates it.
  for (const o of ctx.objects.values()) {
    for (const d of [...o.dependsOn]) {
      const id = ctx.aliases.get(d);
      if (id !== undefined && id !== d) {
        o.dependsOn.delete(d);
        if (id !== o.id) o.dependsOn.add(id);
      }
    }
  }
  const excludedDeps = new Map<string, string>();
  for (const e of edges) {
    const from = ctx.resolve(address(e.catalog, e.objid));
    if (!from) continue;
    const refAddress = address(e.refcatalog, e.refobjid);
    const to = ctx.resolve(refAddress);
    if (to) {
      if (to.id !== from.id) from.dependsOn.add(to.id);
    } else if (ctx.excluded.has(refAddress)) {
      excludedDeps.set(from.id, refAddress);
    }
  }
  // Leave out what needs something out of scope, and what needs that, and so on.
  const skipped: Array<{ name: string; because: string }> = [];
  const removed = new Set<string>();
  let changed = true;
  for (const [id] of excludedDeps) removed.add(id);
  while (changed) {
    changed = false;
    for (const o of ctx.objects.values()) {
      if (removed.has(o.id)) continue;
      if ([...o.dependsOn].some((d) => removed.has(d))) {
        removed.add(o.id);
        changed = true;
      }
    }
  }
  for (const id of removed) {
    const o = ctx.objects.get(id);
    if (!o) continue;
    // An owner or a grant goes with its object; naming them too would only repeat it.
    if (o.kind !== 'owner' && o.kind !== 'privileges') {
      skipped.push({ name: `${o.kind} ${o.name}`, because: 'it depends on an object out of scope' });
    }
    ctx.objects.delete(id);
  }
  return skipped;
}
