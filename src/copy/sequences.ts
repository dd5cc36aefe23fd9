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
export async function readSequenceValues(source: pg.Client): Promise<SequenceValue[]> {
  const { rows } = await source.query<{ qname: string; last_value: string }>(
    `SELECT format('%I.%I', schemaname, sequencename) AS qname, last_value::text
       FROM pg_sequences WHERE last_value IS NOT NULL`,
  );
  return rows.map((r) => ({ qname: r.qname, lastValue: r.last_value }));
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
