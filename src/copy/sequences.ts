import type pg from 'pg';

export interface SequenceValue {
  readonly qname: string;
  readonly lastValue: string;
}

/**
 * Sequence positions on the source. Sequences are not transactional, so this is their value
 * now, at or past the snapshot's: a target sequence set from it never hands out an id the
 * copied rows already use.
 */
export async function readSequenceValues(
  source: pg.Client,
  created: ReadonlySet<string>,
  copiedTables: ReadonlySet<string>,
): Promise<SequenceValue[]> {
  // Only what this clone made: its sequences, and the identity sequences of the tables it copied.
  // A partitioned table's identity sequence belongs to the parent, which holds no rows: it counts
  // as copied when one of its partitions (at any depth) was.
  const { rows } = await source.query<{ qname: string; last_value: string; identity_of: string[] }>(
    `WITH RECURSIVE owner(seq, rel) AS (
       SELECT d.objid, d.refobjid
         FROM pg_depend d JOIN pg_class s ON s.oid = d.objid
        WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'i' AND s.relkind = 'S'
       UNION
       SELECT o.seq, i.inhrelid FROM owner o JOIN pg_inherits i ON i.inhparent = o.rel
     )
     SELECT format('%I.%I', s.schemaname, s.sequencename) AS qname, s.last_value::text,
            ARRAY(SELECT format('%I.%I', tn.nspname, t.relname)
                    FROM owner o JOIN pg_class t ON t.oid = o.rel JOIN pg_namespace tn ON tn.oid = t.relnamespace
                   WHERE o.seq = format('%I.%I', s.schemaname, s.sequencename)::regclass) AS identity_of
       FROM pg_sequences s WHERE s.last_value IS NOT NULL`,
  );
  return rows
    .filter((r) => created.has(r.qname) || r.identity_of.some((table) => copiedTables.has(table)))
    .map((r) => ({ qname: r.qname, lastValue: r.last_value }));
}

/** Sets each sequence that exists on the target; returns how many were set. */
export async function setSequenceValues(target: pg.Client, values: readonly SequenceValue[]): Promise<number> {
  if (values.length === 0) return 0;
  const { rows } = await target.query<{ n: number }>(
    `SELECT count(setval(to_regclass(q), v::bigint, true))::int AS n
       FROM unnest($1::text[], $2::text[]) AS s(q, v)
      WHERE to_regclass(q) IS NOT NULL`,
    [values.map((v) => v.qname), values.map((v) => v.lastValue)],
  );
  return rows[0]?.n ?? 0;
}
