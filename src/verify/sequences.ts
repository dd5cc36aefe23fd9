import { NON_USER_SCHEMAS_SQL, type Scope } from '../catalog/index.js';
import type { SideSession } from './session.js';
import type { SequenceResult, SequenceSetAt, SequenceStatus } from './types.js';

interface SequenceRow {
  readonly name: string;
  readonly lastValue: string | null;
  readonly increment: bigint;
}

/**
 * Sequences in scope on one side: a sequence owned by a table (serial, identity) goes with its
 * table's scope, any other with its schema's. last_value is null for a sequence never called.
 */
async function readSequences(side: SideSession, scope: Scope): Promise<SequenceRow[]> {
  const rows = await side.query(
    'reading sequence values',
    `SELECT s.schemaname AS schema, s.sequencename AS name, pg_catalog.format('%I.%I', s.schemaname, s.sequencename) AS qname,
            s.last_value::text AS last_value, s.increment_by::text AS increment,
            tn.nspname AS table_schema, t.relname AS table_name
       FROM pg_catalog.pg_sequences s
       JOIN pg_catalog.pg_namespace n ON n.nspname = s.schemaname
       JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = s.sequencename
       LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                                        AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i')
       LEFT JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
       LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
      WHERE s.schemaname NOT IN (${NON_USER_SCHEMAS_SQL})
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')`,
  );
  return rows
    .filter((r) =>
      r.table_name === null ? scope.includesSchema(r.schema!) : scope.includes({ schema: r.table_schema!, name: r.table_name! }),
    )
    .map((r) => ({ name: r.qname!, lastValue: r.last_value ?? null, increment: BigInt(r.increment!) }));
}

export async function compareSequences(source: SideSession, target: SideSession, scope: Scope): Promise<SequenceResult[]> {
  const [s, t] = await Promise.all([readSequences(source, scope), readSequences(target, scope)]);
  const onTarget = new Map(t.map((r) => [r.name, r]));
  return s.map((r) => {
    const other = onTarget.get(r.name);
    return {
      name: r.name,
      source: r.lastValue,
      target: other?.lastValue ?? null,
      status: other === undefined ? 'missing-on-target' : sequenceStatus(r.lastValue, other.lastValue, r.increment),
    };
  });
}

/**
 * Where the target's sequence stands against the source's. Behind is a difference: the target
 * would hand out ids the copied rows already use. Ahead is fine (cut-over adds a margin on
 * purpose). A sequence counting down is ahead when its value is lower.
 */
export function sequenceStatus(source: string | null, target: string | null, increment: bigint): SequenceStatus {
  if (source === null) return target === null ? 'identical' : 'ahead';
  if (target === null) return 'behind';
  const gap = (BigInt(target) - BigInt(source)) * (increment < 0n ? -1n : 1n);
  return gap === 0n ? 'identical' : gap > 0n ? 'ahead' : 'behind';
}

/** Missing, or behind with nothing to set it: a difference. */
export function sequenceDiffers(result: SequenceResult): boolean {
  return (result.status === 'behind' && result.setAt === undefined) || result.status === 'missing-on-target';
}

/**
 * A target that follows its source gets no sequence values from the stream: each one behind is
 * marked with the step that sets it (the status stays 'behind', so a reader of the JSON sees
 * the values as they are). A sequence missing on the target stays a difference: no step makes it.
 */
export function setByTheStep(results: SequenceResult[], setAt: SequenceSetAt | null): SequenceResult[] {
  return setAt === null ? results : results.map((r) => (r.status === 'behind' ? { ...r, setAt } : r));
}
