import type pg from 'pg';
import { displayName } from '../catalog/index.js';
import { PgferryError } from '../errors.js';
import type { RelationMessage } from '../replication/index.js';
import { quoteIdent, quoteQualified } from '../plumbing/index.js';

/** OIDs below it are the built-in objects', the same on every server (FirstNormalObjectId). */
const FIRST_NORMAL_OID = 16384;

/** How rows of a table are found on the target when they change. */
export type RowIdentity =
  /** By the replica identity key the source sends (primary key or identity index). */
  | { readonly kind: 'key'; readonly columns: readonly number[] }
  /** REPLICA IDENTITY FULL: by the whole old row, one row per change. */
  | { readonly kind: 'full' }
  /** REPLICA IDENTITY NOTHING: only inserts can arrive. */
  | { readonly kind: 'none' };

/** A source relation as the apply writes it: the target table and, per sent column, its target type. */
export interface TargetTable {
  readonly relationId: number;
  /** Quoted and qualified, for SQL. */
  readonly qname: string;
  /** schema.name for people. */
  readonly display: string;
  readonly partitioned: boolean;
  /** Quoted target column names, in the order the source sends values. */
  readonly columns: readonly string[];
  /**
   * Target types of those columns without their modifiers, for reading the text values: an
   * explicit cast to varchar(10) or bit(3) would cut a longer value to fit, where the
   * assignment to the column refuses it, as the source and native replication do.
   */
  readonly types: readonly string[];
  /** Every column of the target table that can be written (not generated), quoted: a row moved whole keeps them all. */
  readonly writable: readonly string[];
  /**
   * Columns that are GENERATED ALWAYS AS IDENTITY on the target: inserts must override them
   * (the source's value is the row's), and an UPDATE cannot set them, so a change of their
   * value moves the row: deleted and inserted again with OVERRIDING SYSTEM VALUE.
   */
  readonly alwaysIdentity: readonly boolean[];
  readonly identity: RowIdentity;
}

/** What TargetTables knew at one moment: see `snapshot`. */
export interface DefinitionsSnapshot {
  readonly relations: ReadonlyMap<number, RelationMessage>;
  readonly tables: ReadonlyMap<number, TargetTable>;
}

/**
 * Maps relations of the change stream to target tables, by schema, name and column names:
 * the target's column order and its generated columns don't matter. Read from the target
 * catalog once per relation definition.
 */
export class TargetTables {
  private readonly byRelation = new Map<number, TargetTable>();
  private readonly relations = new Map<number, RelationMessage>();
  /** The definition each relation had before its latest one: what an added column is told from. */
  private readonly previous = new Map<number, RelationMessage>();

  /**
   * `addColumns`: when no event trigger carries schema changes, a column the source added at the
   * end of a table (built-in type) is added on the target as its rows arrive; anything else
   * stops with the change named.
   */
  constructor(
    private readonly client: pg.Client,
    private readonly addColumns = false,
  ) {}

  /**
   * A relation message from the stream: its definition replaces the one known before. True
   * when it differs from that one: rows decoded under the old definition must be written first.
   */
  define(relation: RelationMessage): boolean {
    const known = this.relations.get(relation.relationId);
    if (known && sameDefinition(known, relation)) return false;
    if (known) this.previous.set(relation.relationId, known);
    this.relations.set(relation.relationId, relation);
    this.byRelation.delete(relation.relationId);
    return known !== undefined;
  }

  /**
   * The definitions known now. A batch replayed in source order starts again from these, so a
   * change is read under the definition in force where it stands in the stream, not under one
   * a later relation message of the batch brought.
   */
  snapshot(): DefinitionsSnapshot {
    return { relations: new Map(this.relations), tables: new Map(this.byRelation) };
  }

  /** The target's tables changed (a schema change ran): each is read again at its next change. */
  forgetTargets(): void {
    this.byRelation.clear();
  }

  restore(snapshot: DefinitionsSnapshot): void {
    this.relations.clear();
    for (const [id, relation] of snapshot.relations) this.relations.set(id, relation);
    this.byRelation.clear();
    for (const [id, table] of snapshot.tables) this.byRelation.set(id, table);
  }

  relation(relationId: number): RelationMessage {
    const relation = this.relations.get(relationId);
    if (!relation)
      throw new PgferryError('stream-undecodable', `source: a change for relation ${relationId} arrived before its definition`, {
        side: 'source',
      });
    return relation;
  }

  /** The table when already read from the target (the common case: no await per change). */
  known(relationId: number): TargetTable | undefined {
    return this.byRelation.get(relationId);
  }

  async resolve(relationId: number): Promise<TargetTable> {
    const known = this.byRelation.get(relationId);
    if (known) return known;
    const relation = this.relation(relationId);
    const table = await this.read(relation);
    this.byRelation.set(relationId, table);
    return table;
  }

  private async read(relation: RelationMessage): Promise<TargetTable> {
    const name = { schema: relation.schema, name: relation.name };
    const { rows } = await this.client.query<{
      relkind: string;
      columns: string[] | null;
      types: string[] | null;
      generated: string[] | null;
      always: string[] | null;
    }>(
      `SELECT c.relkind::text AS relkind,
              -- A table without columns (it can hold rows) has one row here with no attribute.
              array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attnum IS NOT NULL) AS columns,
              array_agg(format_type(a.atttypid, -1) ORDER BY a.attnum) FILTER (WHERE a.attnum IS NOT NULL) AS types,
              array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE coalesce(to_jsonb(a) ->> 'attgenerated', '') <> '') AS generated,
              array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attidentity = 'a') AS always
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
        GROUP BY c.relkind`,
      [relation.schema, relation.name],
    );
    const row = rows[0];
    if (!row) {
      throw new PgferryError('schema-conflict', `target: table ${displayName(name)} receives changes but does not exist on the target`, {
        side: 'target',
        fix: 'create it on the target (pgferry clone --schema-only --include-table …), or leave it out of the migration with --exclude-table',
      });
    }
    if (this.addColumns) {
      const writable = (row.columns ?? []).filter((c) => !(row.generated ?? []).includes(c));
      if (await this.addColumnsFromStream(relation, new Set(writable))) return this.read(relation);
    }
    const typeOf = new Map<string, string>();
    (row.columns ?? []).forEach((column, i) => typeOf.set(column, row.types![i]!));
    const generated = new Set(row.generated ?? []);
    const always = new Set(row.always ?? []);
    const types: string[] = [];
    for (const column of relation.columns) {
      const type = typeOf.get(column.name);
      if (type === undefined || generated.has(column.name)) {
        throw new PgferryError(
          'schema-conflict',
          `target: table ${displayName(name)} has no writable column "${column.name}" for the changes of the source`,
          {
            side: 'target',
            fix: `add the column on the target with the source's type, or leave the table out with --exclude-table`,
          },
        );
      }
      types.push(type);
    }
    return {
      relationId: relation.relationId,
      qname: quoteQualified(name),
      display: displayName(name),
      partitioned: row.relkind === 'p',
      columns: relation.columns.map((c) => quoteIdent(c.name)),
      types,
      writable: (row.columns ?? []).filter((c) => !generated.has(c)).map(quoteIdent),
      alwaysIdentity: relation.columns.map((c) => always.has(c.name)),
      identity: relation.replicaIdentity === 'full' ? await this.fullIdentity(relation) : identityOf(relation),
    };
  }

  /**
   * Columns the stream shows and the target lacks, added when they are what ADD COLUMN makes:
   * at the end, every column of the definition before still there, of a built-in type (its OID
   * means the same on both servers). True when some were added.
   */
  private async addColumnsFromStream(relation: RelationMessage, onTarget: ReadonlySet<string>): Promise<boolean> {
    const firstMissing = relation.columns.findIndex((c) => !onTarget.has(c.name));
    if (firstMissing < 0) return false;
    const missing = relation.columns.slice(firstMissing).filter((c) => !onTarget.has(c.name));
    const appended = missing.length === relation.columns.length - firstMissing;
    const name = displayName({ schema: relation.schema, name: relation.name });
    const before = this.previous.get(relation.relationId);
    // A column the target has and the stream does not send, beside a new one: renamed, or dropped and
    // another added; which of the two can't be told from the stream.
    const sent = new Set(relation.columns.map((c) => c.name));
    const keptAll = (before === undefined || before.columns.every((c) => sent.has(c.name))) && [...onTarget].every((c) => sent.has(c));
    const builtIn = missing.every((c) => c.typeOid < FIRST_NORMAL_OID);
    if (!appended || !keptAll || !builtIn) {
      throw new PgferryError(
        'schema-change',
        `source: table ${name} changed on the source (${missing.map((c) => `"${c.name}"`).join(', ')} not on the target${keptAll ? '' : ', a column renamed or dropped'}), and without an event trigger sync carries only columns added at the end with built-in types`,
        {
          side: 'source',
          fix: 'make the same change on the target by hand and run sync again; or run sync as a role that may create event triggers (a superuser, rds_superuser) so schema changes are carried',
        },
      );
    }
    const qname = quoteQualified({ schema: relation.schema, name: relation.name });
    for (const column of missing) {
      const { rows } = await this.client.query<{ type: string }>(`SELECT format_type($1, $2) AS type`, [
        column.typeOid,
        column.typeModifier,
      ]);
      await this.client.query(`ALTER TABLE ${qname} ADD COLUMN ${quoteIdent(column.name)} ${rows[0]!.type}`);
    }
    return true;
  }

  /**
   * REPLICA IDENTITY FULL sends whole old rows. Matching them whole is a scan of the table per
   * change; where the target has a unique index over NOT NULL columns the source sends (a
   * primary key, most often), a row is found by those columns instead, through the index.
   */
  private async fullIdentity(relation: RelationMessage): Promise<RowIdentity> {
    const { rows } = await this.client.query<{ columns: string[] }>(
      `SELECT array_agg(a.attname::text ORDER BY k.n) AS columns
         FROM pg_index i
         -- Key columns only (INCLUDE columns are not unique); indnkeyatts arrived in 11, where INCLUDE did.
         CROSS JOIN LATERAL generate_series(0, coalesce((to_jsonb(i) ->> 'indnkeyatts')::int, i.indnatts) - 1) AS k(n)
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k.n]
        WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indisvalid AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL
        GROUP BY i.indexrelid, i.indisprimary
       HAVING bool_and(a.attnotnull)
        ORDER BY i.indisprimary DESC, count(*)`,
      [quoteQualified({ schema: relation.schema, name: relation.name })],
    );
    const position = new Map(relation.columns.map((c, i) => [c.name, i]));
    for (const { columns } of rows) {
      const positions = columns.map((name) => position.get(name));
      if (positions.every((p): p is number => p !== undefined)) return { kind: 'key', columns: positions };
    }
    return { kind: 'full' };
  }
}

function identityOf(relation: RelationMessage): RowIdentity {
  const columns = relation.columns.flatMap((c, i) => (c.isKey ? [i] : []));
  if (relation.replicaIdentity === 'nothing' || columns.length === 0) return { kind: 'none' };
  return { kind: 'key', columns };
}

function sameDefinition(a: RelationMessage, b: RelationMessage): boolean {
  return (
    a.schema === b.schema &&
    a.name === b.name &&
    a.replicaIdentity === b.replicaIdentity &&
    a.columns.length === b.columns.length &&
    a.columns.every((c, i) => {
      const d = b.columns[i]!;
      return c.name === d.name && c.typeOid === d.typeOid && c.typeModifier === d.typeModifier && c.isKey === d.isKey;
    })
  );
}
