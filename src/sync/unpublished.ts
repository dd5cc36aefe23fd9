import type pg from 'pg';
import { displayName, NON_USER_SCHEMAS_SQL, type Scope } from '../catalog/index.js';
import type { Logger } from '../log/index.js';

/** How often the source is asked, and how often one finding is said again. */
const LOOK_EVERY_MS = 5_000;
const SAY_AGAIN_MS = 5 * 60_000;

export interface UnpublishedTable {
  /** Quoted and qualified. */
  readonly table: string;
  readonly schema: string;
  readonly name: string;
  /** The partitioned table it belongs to, quoted and qualified. */
  readonly parent: string | null;
  /** A primary key or replica identity: publishing it would not break the application's UPDATE and DELETE. */
  readonly identifiable: boolean;
}

/**
 * Tables the migration covers that the stream cannot see: every table in scope was published
 * when sync began, and the schema-change capture publishes those made since, so one that is
 * not was made without a key (publishing it would make UPDATE and DELETE fail on the source),
 * or made while no capture ran (a role that may not create event triggers). Its rows written
 * from now on would be missing on the target.
 */
export async function unpublishedTables(source: pg.Client, publication: string, scope: Scope): Promise<UnpublishedTable[]> {
  const { rows } = await source.query<UnpublishedTable>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS table, n.nspname AS schema, c.relname AS name,
            (SELECT format('%I.%I', pn.nspname, p.relname) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
               JOIN pg_namespace pn ON pn.oid = p.relnamespace WHERE i.inhrelid = c.oid AND c.relispartition) AS parent,
            c.relreplident = 'f'
              OR (c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))
              OR (c.relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)) AS identifiable
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND c.relpersistence = 'p'
        AND n.nspname NOT IN (${NON_USER_SCHEMAS_SQL}) AND n.nspname NOT LIKE 'pg\\_%'
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
        AND NOT EXISTS (SELECT 1 FROM pg_publication_rel pr JOIN pg_publication pb ON pb.oid = pr.prpubid WHERE pb.pubname = $1 AND pr.prrelid = c.oid)
      ORDER BY 1`,
    [publication],
  );
  return rows.filter((t) => scope.includes(t));
}

/** Looks every few seconds and says loudly what it finds, with the way out for each kind. */
export class UnpublishedTableWatch {
  private lastLook = 0;
  private readonly said = new Map<string, number>();

  constructor(
    private readonly source: pg.Client,
    private readonly publication: string,
    private readonly scope: Scope,
    private readonly logger: Logger,
  ) {}

  async look(now: number): Promise<void> {
    if (now - this.lastLook < LOOK_EVERY_MS) return;
    this.lastLook = now;
    const found = await unpublishedTables(this.source, this.publication, this.scope);
    const due = found.filter((t) => now - (this.said.get(t.table) ?? -Infinity) >= SAY_AGAIN_MS);
    if (due.length === 0) return;
    for (const t of due) this.said.set(t.table, now);
    const named = (list: readonly UnpublishedTable[]) => list.map((t) => (t.parent ? `${t.table} (of ${t.parent})` : displayName(t)));
    const keyless = due.filter((t) => !t.identifiable);
    const unseen = due.filter((t) => t.identifiable);
    if (keyless.length > 0) {
      this.logger.error(
        { tables: named(keyless), publication: this.publication },
        'tables made on the source during sync without a primary key or replica identity are not streamed (publishing them would make UPDATE and DELETE fail on the source): rows written to them are missing on the target. ' +
          'Give each a primary key (or REPLICA IDENTITY FULL): with the schema-change capture it then joins the stream, and the rows it held before must be copied by hand; or leave it out with --exclude-table',
      );
    }
    if (unseen.length > 0) {
      this.logger.error(
        { tables: named(unseen), publication: this.publication },
        `tables made on the source during sync while no schema-change capture ran are not streamed: rows written to them are missing on the target. ` +
          `Create each on the target and add it to the publication (ALTER PUBLICATION ${this.publication} ADD TABLE …) before it receives rows, or copy the rows it already holds by hand; ` +
          `run sync as a role that may create event triggers so new tables join by themselves`,
      );
    }
  }
}
