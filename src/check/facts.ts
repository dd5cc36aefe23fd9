import type pg from 'pg';
import { mayCreateEventTriggers } from '../ddl/index.js';
import { extractSchema, findUnsupportedObjects, rolesTheSchemaNeeds, type UnsupportedObject } from '../schema/index.js';
import {
  assertStreamableSource,
  listTables,
  readServerInfo,
  tablesOnTarget,
  readSettings,
  type QualifiedName,
  type Scope,
  type ServerInfo,
  type TableInfo,
} from '../catalog/index.js';
import { inTransaction, SQLSTATE, sqlState } from '../plumbing/index.js';

export interface SourceFacts {
  readonly server: ServerInfo;
  readonly walLevel: string;
  readonly maxReplicationSlots: number;
  readonly maxWalSenders: number;
  /** In MB; -1 is unlimited; undefined before PostgreSQL 13. */
  readonly maxSlotWalKeepSizeMb: number | undefined;
  /** In seconds; 0 is off; undefined before PostgreSQL 18. */
  readonly idleSlotTimeoutSeconds: number | undefined;
  readonly slotsUsed: number;
  /** Slots no session is streaming from: each keeps the WAL from its position on. */
  readonly inactiveSlots: readonly InactiveSlot[];
  readonly sendersUsed: number;
  /** Whether the role may create event triggers (tried and rolled back), and the server's word if not. */
  readonly eventTriggers: { readonly allowed: boolean; readonly why: string };
  readonly hasReplicationAttribute: boolean;
  /** The managed-service role that grants replication, when that is how the role may replicate. */
  readonly managedReplicationRole: string | undefined;
  readonly canCreateInDatabase: boolean;
  readonly tables: readonly TableInfo[];
  readonly largeObjects: number;
  readonly extensions: ReadonlyArray<{ readonly name: string; readonly version: string }>;
  /** Average WAL write rate since the statistics were reset; undefined where pg_stat_wal is missing (before 14). */
  readonly walBytesPerSecond: number | undefined;
  /** Schema objects in scope the schema copy cannot recreate. */
  readonly unsupportedObjects: readonly UnsupportedObject[];
  /** Roles that own or are granted something in scope. */
  readonly requiredRoles: readonly string[];
}

export interface InactiveSlot {
  readonly name: string;
  /** The database of a logical slot when it is not the one checked: it is dropped from there. */
  readonly otherDatabase: string | null;
  /** Bytes of WAL between the slot's restart position and now; null once the server invalidated it. */
  readonly retainedBytes: number | null;
}

export interface TargetFacts {
  readonly server: ServerInfo;
  readonly canCreateInDatabase: boolean;
  readonly canSetReplicationRole: boolean;
  /** Extension name → versions the target can install. */
  readonly availableExtensions: ReadonlyMap<string, ReadonlySet<string>>;
  /** Tables in scope that exist on the target and hold at least one row. */
  readonly nonEmptyTables: readonly QualifiedName[];
  /** Tables in scope that exist on the target but the role cannot read, so emptiness is unknown. */
  readonly unreadableTables: readonly QualifiedName[];
  /** Source schemas that exist on the target but where the role may not create objects. */
  readonly schemasWithoutCreate: readonly string[];
  readonly roles: ReadonlySet<string>;
  /** What the way back (a slot on the target after the cut-over) needs. */
  readonly wayBack: WayBackFacts;
}

/** The target as a server to stream from: the way back after a cut-over reads its changes through a slot. */
export interface WayBackFacts {
  readonly walLevel: string;
  readonly freeSlots: number;
  readonly maxWalSenders: number;
  readonly mayReplicate: boolean;
}

/** Roles of managed services whose members may open replication connections. */
const MANAGED_REPLICATION_ROLES = ['rds_replication', 'rds_superuser'];
/** The first of those the current role is a member of, or NULL; $1 is MANAGED_REPLICATION_ROLES. */
const MANAGED_REPLICATION_ROLE_SQL = `(SELECT m.rolname FROM pg_roles m WHERE m.rolname = ANY($1) AND pg_has_role(current_user, m.oid, 'MEMBER') LIMIT 1)`;

/** A check must never hang behind someone's ALTER TABLE or VACUUM FULL. */
async function boundSession(client: pg.Client): Promise<void> {
  await client.query(`SELECT set_config('lock_timeout', '10s', false), set_config('statement_timeout', '5min', false)`);
}

export async function readSourceFacts(client: pg.Client, scope: Scope): Promise<SourceFacts> {
  await boundSession(client);
  await assertStreamableSource(client);
  const server = await readServerInfo(client);
  const settings = await readSettings(client, [
    'wal_level',
    'max_replication_slots',
    'max_wal_senders',
    'max_slot_wal_keep_size',
    'idle_replication_slot_timeout',
  ]);
  const numberOf = (name: string) => (settings.has(name) ? Number(settings.get(name)) : undefined);

  const usage = await client.query<{ slots: number; senders: number; largeobjects: number }>(`
    SELECT (SELECT count(*) FROM pg_replication_slots)::int AS slots,
           -- pg_stat_activity hides other roles' backend_type; pg_stat_replication lists every WAL sender.
           (SELECT count(*) FROM pg_stat_replication)::int AS senders,
           (SELECT count(*) FROM pg_largeobject_metadata)::int AS largeobjects`);
  const role = await client.query<{ rolreplication: boolean; managed: string | null; can_create: boolean }>(
    `SELECT r.rolreplication,
            ${MANAGED_REPLICATION_ROLE_SQL} AS managed,
            has_database_privilege(current_database(), 'CREATE') AS can_create
       FROM pg_roles r WHERE r.rolname = current_user`,
    [MANAGED_REPLICATION_ROLES],
  );
  const extensions = await client.query<{ name: string; version: string }>(
    `SELECT extname AS name, extversion AS version FROM pg_extension ORDER BY extname`,
  );
  // A slot without restart_lsn reserves no WAL, unless the server invalidated it (wal_status 'lost').
  const inactiveSlots = await client.query<{ name: string; other_database: string | null; retained: number | null }>(
    `SELECT slot_name AS name, CASE WHEN database <> current_database() THEN database END AS other_database,
            pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, restart_lsn)::float8 AS retained
       FROM pg_replication_slots WHERE NOT active AND (restart_lsn IS NOT NULL${server.major >= 13 ? ` OR wal_status = 'lost'` : ''}) ORDER BY slot_name`,
  );
  let walBytesPerSecond: number | undefined;
  if (server.major >= 14) {
    const wal = await client.query<{ bytes: number; seconds: number }>(`
      SELECT wal_bytes::float8 AS bytes,
             -- The counters survive clean restarts, so the window is since the last reset.
             GREATEST(extract(epoch FROM now() - coalesce(stats_reset, pg_postmaster_start_time())), 1)::float8 AS seconds
        FROM pg_stat_wal`);
    const row = wal.rows[0];
    if (row) walBytesPerSecond = row.bytes / row.seconds;
  }
  const schema = await extractSchema(client, scope);
  const unsupportedObjects = [...schema.unsupported, ...(await findUnsupportedObjects(client))];
  const requiredRoles = rolesTheSchemaNeeds(schema);
  const counts = usage.rows[0]!;
  const roleRow = role.rows[0]!;
  return {
    server,
    walLevel: settings.get('wal_level') ?? 'unknown',
    maxReplicationSlots: numberOf('max_replication_slots') ?? 0,
    maxWalSenders: numberOf('max_wal_senders') ?? 0,
    maxSlotWalKeepSizeMb: numberOf('max_slot_wal_keep_size'),
    idleSlotTimeoutSeconds: numberOf('idle_replication_slot_timeout'),
    slotsUsed: counts.slots,
    inactiveSlots: inactiveSlots.rows.map((r) => ({ name: r.name, otherDatabase: r.other_database, retainedBytes: r.retained })),
    sendersUsed: counts.senders,
    eventTriggers: await mayCreateEventTriggers(client),
    hasReplicationAttribute: roleRow.rolreplication || server.isSuperuser,
    managedReplicationRole: roleRow.managed ?? undefined,
    canCreateInDatabase: roleRow.can_create,
    tables: await listTables(client, scope),
    largeObjects: counts.largeobjects,
    extensions: extensions.rows,
    walBytesPerSecond,
    unsupportedObjects,
    requiredRoles,
  };
}

export async function readTargetFacts(client: pg.Client, sourceTables: readonly QualifiedName[]): Promise<TargetFacts> {
  await boundSession(client);
  const server = await readServerInfo(client);
  const privilege = await client.query<{ can_create: boolean }>(
    `SELECT has_database_privilege(current_database(), 'CREATE') AS can_create`,
  );
  const extensions = await client.query<{ name: string; version: string }>(`SELECT name, version FROM pg_available_extension_versions`);
  const availableExtensions = new Map<string, Set<string>>();
  for (const { name, version } of extensions.rows) {
    const versions = availableExtensions.get(name) ?? new Set<string>();
    versions.add(version);
    availableExtensions.set(name, versions);
  }
  return {
    server,
    canCreateInDatabase: privilege.rows[0]!.can_create,
    canSetReplicationRole: await canSetReplicationRole(client),
    availableExtensions,
    ...(await tablesOnTarget(client, sourceTables)),
    schemasWithoutCreate: server.isSuperuser ? [] : await schemasWithoutCreate(client, sourceTables),
    roles: new Set((await client.query<{ rolname: string }>('SELECT rolname FROM pg_roles')).rows.map((r) => r.rolname)),
    wayBack: await readWayBackFacts(client, server.isSuperuser),
  };
}

async function readWayBackFacts(client: pg.Client, isSuperuser: boolean): Promise<WayBackFacts> {
  const settings = await readSettings(client, ['wal_level', 'max_replication_slots', 'max_wal_senders']);
  const { rows } = await client.query<{ slots: number; may_replicate: boolean }>(
    `SELECT (SELECT count(*) FROM pg_replication_slots)::int AS slots,
            (SELECT rolreplication FROM pg_roles WHERE rolname = current_user) OR ${MANAGED_REPLICATION_ROLE_SQL} IS NOT NULL AS may_replicate`,
    [MANAGED_REPLICATION_ROLES],
  );
  return {
    walLevel: settings.get('wal_level') ?? 'unknown',
    freeSlots: Number(settings.get('max_replication_slots') ?? 0) - rows[0]!.slots,
    maxWalSenders: Number(settings.get('max_wal_senders') ?? 0),
    mayReplicate: isSuperuser || rows[0]!.may_replicate,
  };
}

async function schemasWithoutCreate(client: pg.Client, sourceTables: readonly QualifiedName[]): Promise<string[]> {
  const schemas = [...new Set(sourceTables.map((t) => t.schema))];
  const { rows } = await client.query<{ name: string }>(
    `SELECT nspname AS name FROM pg_namespace WHERE nspname = ANY($1) AND NOT has_schema_privilege(oid, 'CREATE') ORDER BY 1`,
    [schemas],
  );
  return rows.map((r) => r.name);
}

/**
 * Apply runs with session_replication_role = replica so that target triggers and foreign keys
 * don't fire twice. Only trying it tells whether this role may (superuser, a managed
 * service's admin role, or GRANT SET ON PARAMETER on 15+).
 */
async function canSetReplicationRole(client: pg.Client): Promise<boolean> {
  try {
    await inTransaction(client, () => client.query(`SET LOCAL session_replication_role = replica`), { rollback: true });
    return true;
  } catch (error) {
    if (sqlState(error) === SQLSTATE.insufficientPrivilege) return false;
    throw error;
  }
}
