import { createHash } from 'node:crypto';
import type pg from 'pg';
import { displayName, listTables, REPLICATION_EXTENSIONS_SQL, type Scope } from '../catalog/index.js';
import { messageOf, PgferryError, usageError } from '../errors.js';
import { formatLsn, parseLsn, type Lsn } from '../replication/index.js';
import { quoteIdent, quoteQualified, SQLSTATE, sqlState } from '../plumbing/index.js';

/** What the migration is called on the source: its slot and its publication. */
export interface MigrationNames {
  readonly name: string;
  readonly slot: string;
  readonly publication: string;
}

/** Slot names allow lower-case letters, digits and underscores, up to 63 bytes. */
export function migrationNames(name: string): MigrationNames {
  if (!/^[a-z0-9_]{1,50}$/.test(name)) {
    throw usageError(
      `migration name "${name}" is not usable as a replication slot name`,
      'use lower-case letters, digits and underscores, at most 50 of them',
    );
  }
  return { name, slot: `pgferry_${name}`, publication: `pgferry_${name}` };
}

/**
 * The migration name when none is given: the target database's name, so people recognise it,
 * and a fingerprint of the target (its server's system identifier and the database's OID), so
 * that two targets with the same database name (a rehearsal and production) never share one
 * slot on the source: a slot shared by two targets would let one skip the other's changes.
 */
export async function defaultMigrationName(target: pg.Client): Promise<string> {
  const { rows } = await target.query<{ database: string; identity: string }>(
    `SELECT current_database() AS database,
            (SELECT system_identifier::text FROM pg_control_system()) || '/' || (SELECT oid::text FROM pg_database WHERE datname = current_database()) AS identity`,
  );
  const row = rows[0]!;
  const cleaned = row.database
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 41);
  const fingerprint = createHash('sha256').update(row.identity).digest('hex').slice(0, 8);
  return `${cleaned === '' ? 'main' : cleaned}_${fingerprint}`;
}

/** The server's system identifier: the same for a server and its physical copies, different for any other. */
export async function systemIdentifier(client: pg.Client): Promise<string> {
  const { rows } = await client.query<{ id: string }>(`SELECT system_identifier::text AS id FROM pg_control_system()`);
  return rows[0]!.id;
}

/** pgoutput protocol and options by source version: the highest each server speaks. */
export interface StreamProtocol {
  readonly version: 1 | 2 | 3 | 4;
  readonly options: Readonly<Record<string, string>>;
  readonly abortInfo: boolean;
}

export function protocolFor(major: number, publication: string): StreamProtocol {
  const publicationNames = quoteIdent(publication);
  if (major >= 16) {
    return {
      version: 4,
      abortInfo: true,
      options: { proto_version: '4', publication_names: publicationNames, messages: 'true', streaming: 'parallel' },
    };
  }
  if (major >= 15)
    return {
      version: 3,
      abortInfo: false,
      options: { proto_version: '3', publication_names: publicationNames, messages: 'true', streaming: 'true' },
    };
  if (major >= 14)
    return {
      version: 2,
      abortInfo: false,
      options: { proto_version: '2', publication_names: publicationNames, messages: 'true', streaming: 'true' },
    };
  return { version: 1, abortInfo: false, options: { proto_version: '1', publication_names: publicationNames } };
}

/**
 * The tables sync publishes, refusing those whose UPDATE and DELETE would start failing on the
 * source once published (no key and no replica identity): the application must not break.
 */
export async function tablesToPublish(source: pg.Client, scope: Scope): Promise<string[]> {
  const tables = (await listTables(source, scope)).filter((t) => t.kind === 'table' && !t.unlogged);
  const withoutIdentity = tables.filter(
    (t) =>
      (t.replicaIdentity === 'default' && !t.hasPrimaryKey) ||
      (t.replicaIdentity === 'index' && !t.hasIdentityIndex) ||
      t.replicaIdentity === 'nothing',
  );
  if (withoutIdentity.length > 0) {
    const names = withoutIdentity.map(displayName);
    throw new PgferryError(
      'usage',
      `${names.length} table(s) have no primary key or replica identity: ${names.slice(0, 10).join(', ')}${names.length > 10 ? ', …' : ''}; once published, UPDATE and DELETE on them would fail on the source`,
      {
        side: 'source',
        fix: `add a primary key, or run ${withoutIdentity
          .slice(0, 3)
          .map((t) => `ALTER TABLE ${quoteQualified(t)} REPLICA IDENTITY FULL;`)
          .join(' ')} on the source, or leave them out with --exclude-table`,
      },
    );
  }
  return tables.map((t) => quoteQualified(t));
}

/**
 * Extensions' configuration tables in scope (their user rows are copied by the clone): published
 * too, so changes to those rows stream, when the source can identify their rows; one that
 * cannot (no key, no replica identity) would have its UPDATEs fail once published, so it is
 * left out and named.
 */
export async function extensionTablesToPublish(
  source: pg.Client,
  scope: Scope,
): Promise<{ readonly published: string[]; readonly leftOut: string[] }> {
  const { rows } = await source.query<{ schema: string; name: string; qname: string; identifiable: boolean }>(
    `SELECT n.nspname AS schema, c.relname AS name, format('%I.%I', n.nspname, c.relname) AS qname,
            c.relreplident = 'f'
              OR (c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary AND i.indimmediate AND i.indisvalid))
              OR (c.relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident AND i.indisvalid)) AS identifiable
       FROM pg_extension e
      CROSS JOIN LATERAL unnest(e.extconfig) AS x(relid)
       JOIN pg_class c ON c.oid = x.relid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND e.extname NOT IN (${REPLICATION_EXTENSIONS_SQL})
      ORDER BY 3`,
  );
  const inScope = rows.filter((r) => scope.includes(r));
  return {
    published: inScope.filter((r) => r.identifiable).map((r) => r.qname),
    leftOut: inScope.filter((r) => !r.identifiable).map((r) => r.qname),
  };
}

export async function createPublication(source: pg.Client, publication: string, tables: readonly string[]): Promise<void> {
  try {
    await source.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(publication)}`);
    await source.query(
      tables.length === 0
        ? `CREATE PUBLICATION ${quoteIdent(publication)}`
        : `CREATE PUBLICATION ${quoteIdent(publication)} FOR TABLE ${tables.join(', ')}`,
    );
  } catch (error) {
    throw new PgferryError('query', `source: cannot create publication ${publication}: ${messageOf(error)}`, {
      side: 'source',
      fix:
        sqlState(error) === SQLSTATE.insufficientPrivilege
          ? 'the source role must own the tables in scope (or be a superuser) and have CREATE on the database; see pgferry check'
          : 'see pgferry check for what the source needs',
      cause: error,
    });
  }
}

export interface SlotInfo {
  readonly exists: boolean;
  readonly lost: boolean;
  readonly reason: string | undefined;
  readonly active: boolean;
  /** Where the slot will start a new stream at the earliest: nothing before it can be had again. */
  readonly confirmedFlush: Lsn | undefined;
}

export async function readSlot(source: pg.Client, slot: string, major: number): Promise<SlotInfo> {
  const reason = major >= 17 ? 'invalidation_reason' : major >= 13 ? `CASE WHEN wal_status = 'lost' THEN 'wal_removed' END` : 'NULL::text';
  const lost = major >= 13 ? `wal_status = 'lost'` : 'false';
  const { rows } = await source.query<{ lost: boolean; reason: string | null; active: boolean; confirmed: string | null }>(
    `SELECT ${lost} AS lost, ${reason} AS reason, active, confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const row = rows[0];
  if (!row) return { exists: false, lost: false, reason: undefined, active: false, confirmedFlush: undefined };
  return {
    exists: true,
    lost: row.lost || row.reason !== null,
    reason: row.reason ?? undefined,
    active: row.active,
    confirmedFlush: row.confirmed === null ? undefined : parseLsn(row.confirmed),
  };
}

/**
 * The slot has confirmed a position the target never applied: the server would silently start
 * the stream past the changes in between. Another migration with the same name replaced the
 * slot and moved it, or the target was restored to an earlier state.
 */
export function slotAheadError(slot: string, confirmed: Lsn, applied: Lsn): PgferryError {
  return new PgferryError(
    'slot-ahead',
    `source: replication slot ${slot} has confirmed ${formatLsn(confirmed)}, past the ${formatLsn(applied)} the target applied: the changes in between are no longer in the slot (another migration with this name moved it, or the target was restored from an earlier backup)`,
    {
      side: 'source',
      fix: 'the target cannot catch up from here: run pgferry sync --drop-existing to copy again (give each target its own --name, or leave --name out: the default is unique per target)',
    },
  );
}

export async function dropSlotIfExists(source: pg.Client, slot: string): Promise<void> {
  await source.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`, [slot]);
}

/** Why a slot can't serve the migration any more, and the way out. */
export function slotGoneError(slot: string, info: SlotInfo): PgferryError {
  const why = !info.exists
    ? `replication slot ${slot} no longer exists on the source (dropped by someone, or by the server)`
    : `replication slot ${slot} was invalidated by the source (${info.reason ?? 'WAL it needed was removed'}): the changes since the target's position are gone`;
  return new PgferryError('slot-lost', `source: ${why}`, {
    side: 'source',
    fix: 'the target cannot catch up from here: run pgferry cleanup, then pgferry sync --drop-existing to copy again; raise max_slot_wal_keep_size (or keep sync running) so it does not happen again',
  });
}
