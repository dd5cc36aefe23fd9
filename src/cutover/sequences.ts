import type pg from 'pg';
import { SYSTEM_SCHEMA_SQL, type Scope } from '../catalog/index.js';

/** One sequence after the cut-over set it: the source's value, and the target's now. */
export interface SequenceSync {
  readonly name: string;
  readonly source: string;
  /** Null when the sequence does not exist on the target. */
  readonly target: string | null;
  /** False when the target was already past the source's value plus the margin and was left alone. */
  readonly moved: boolean;
}

interface SequencePosition {
  readonly qname: string;
  readonly lastValue: bigint;
  readonly isCalled: boolean;
  /** +1 or -1: a margin moves a descending sequence down. */
  readonly direction: 1n | -1n;
}

/**
 * Sequences in scope: those a table in scope owns (serial and identity columns), and the free
 * ones in schemas in scope. Owned sequences follow their table's filters, so `--exclude-table`
 * leaves its id sequence alone too.
 */
async function sequencesInScope(client: pg.Client, scope: Scope): Promise<Array<{ qname: string; direction: 1n | -1n }>> {
  const { rows } = await client.query<{
    schema: string;
    qname: string;
    increment: string;
    owner_schema: string | null;
    owner_table: string | null;
  }>(
    `SELECT n.nspname AS schema, format('%I.%I', n.nspname, c.relname) AS qname, s.seqincrement::text AS increment,
            tn.nspname AS owner_schema, t.relname AS owner_table
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_sequence s ON s.seqrelid = c.oid
       LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
                            AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
       LEFT JOIN pg_class t ON t.oid = d.refobjid
       LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
      WHERE c.relkind = 'S' AND ${SYSTEM_SCHEMA_SQL}
      ORDER BY 2`,
  );
  return rows
    .filter((r) =>
      r.owner_table !== null && r.owner_schema !== null
        ? scope.includes({ schema: r.owner_schema, name: r.owner_table })
        : scope.includesSchema(r.schema),
    )
    .map((r) => ({ qname: r.qname, direction: r.increment.startsWith('-') ? -1n : 1n }));
}

/** Reads every listed sequence in one statement; names come from the catalog, already quoted. */
async function positions(
  client: pg.Client,
  sequences: ReadonlyArray<{ qname: string; direction: 1n | -1n }>,
): Promise<Map<string, SequencePosition>> {
  if (sequences.length === 0) return new Map();
  const { rows } = await client.query<{ i: number; last_value: string; is_called: boolean }>(
    sequences.map((s, i) => `SELECT ${i} AS i, last_value::text, is_called FROM ${s.qname}`).join(' UNION ALL '),
  );
  return new Map(
    rows.map((r) => {
      const s = sequences[r.i]!;
      return [s.qname, { qname: s.qname, lastValue: BigInt(r.last_value), isCalled: r.is_called, direction: s.direction }];
    }),
  );
}

/**
 * Step 4 of the cut-over, with the source frozen: every sequence in scope on the target is set
 * to the source's position plus the margin, so the first id the application draws on the
 * target is one the source never handed out. A target already further along is not moved back.
 */
export async function syncSequences(source: pg.Client, target: pg.Client, scope: Scope, margin: bigint): Promise<SequenceSync[]> {
  const wanted = await sequencesInScope(source, scope);
  const onSource = await positions(source, wanted);
  const onTargetList = await sequencesInScope(target, scope);
  const present = new Set(onTargetList.map((s) => s.qname));
  const onTarget = await positions(
    target,
    wanted.filter((s) => present.has(s.qname)),
  );

  const updates: Array<{ qname: string; value: bigint; isCalled: boolean }> = [];
  const result: SequenceSync[] = [];
  for (const s of onSource.values()) {
    const current = onTarget.get(s.qname);
    if (!current) {
      result.push({ name: s.qname, source: String(s.lastValue), target: null, moved: false });
      continue;
    }
    const value = s.lastValue + margin * s.direction;
    const behind =
      s.direction === 1n
        ? current.lastValue < value || (current.lastValue === value && !current.isCalled && s.isCalled)
        : current.lastValue > value || (current.lastValue === value && !current.isCalled && s.isCalled);
    if (behind) updates.push({ qname: s.qname, value, isCalled: s.isCalled });
    result.push({ name: s.qname, source: String(s.lastValue), target: String(behind ? value : current.lastValue), moved: behind });
  }
  if (updates.length > 0) {
    await target.query(`SELECT setval(q::regclass, v::bigint, c) FROM unnest($1::text[], $2::text[], $3::boolean[]) AS u(q, v, c)`, [
      updates.map((u) => u.qname),
      updates.map((u) => String(u.value)),
      updates.map((u) => u.isCalled),
    ]);
  }
  return result;
}
