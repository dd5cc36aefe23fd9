import type pg from 'pg';
import { PgferryError } from '../errors.js';

/** What every command needs to know about a server before it talks to it. */
export interface ServerInfo {
  /** server_version_num, e.g. 170010. */
  readonly versionNum: number;
  readonly major: number;
  /** server_version, e.g. "17.10". */
  readonly version: string;
  readonly database: string;
  readonly databaseBytes: number;
  readonly encoding: string;
  readonly collate: string;
  readonly ctype: string;
  /** 'libc', 'icu' or 'builtin'. */
  readonly localeProvider: string;
  /** The ICU or builtin locale (15+), null for libc. */
  readonly locale: string | null;
  readonly currentUser: string;
  readonly isSuperuser: boolean;
  /** Superuser or BYPASSRLS: row-level security never applies to this role. */
  readonly bypassesRowSecurity: boolean;
  readonly inRecovery: boolean;
  /** COMMENT ON DATABASE, which no copy carries (a database is a global object). */
  readonly comment: string | null;
  /** The database's default tablespace. */
  readonly tablespace: string;
  /** CONNECTION LIMIT; -1 for none. */
  readonly connectionLimit: number;
}

/** pgoutput and publications first shipped in PostgreSQL 10: nothing older can be streamed from. */
export const OLDEST_SOURCE_MAJOR = 10;

/**
 * Refuses a source older than pgferry can stream from, naming the two ways such a database is
 * moved, before any catalog query written for 10 and later can fail obscurely on it.
 */
export async function assertStreamableSource(client: pg.Client): Promise<void> {
  const { rows } = await client.query<{ num: string; version: string }>(
    `SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS version`,
  );
  const major = Math.floor(Number(rows[0]!.num) / 10000);
  if (major >= OLDEST_SOURCE_MAJOR) return;
  throw new PgferryError(
    'usage',
    `source: PostgreSQL ${rows[0]!.version} has no pgoutput and no publications (they arrived in PostgreSQL ${OLDEST_SOURCE_MAJOR}), so pgferry cannot stream from it`,
    {
      side: 'source',
      fix: `move it with pg_dump and pg_restore in a maintenance window (writes stopped for the whole copy), or upgrade it in place to PostgreSQL ${OLDEST_SOURCE_MAJOR} or newer with pg_upgrade first and then migrate with pgferry`,
    },
  );
}

/** The major version (13, 17, …): the one fact most version-dependent queries need. */
export async function serverMajor(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
  return Math.floor(Number(rows[0]!.v) / 10000);
}

export async function readServerInfo(client: pg.Client): Promise<ServerInfo> {
  const versionNum = Number((await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0]!.v);
  const provider = versionNum >= 150000 ? `CASE d.datlocprovider WHEN 'i' THEN 'icu' WHEN 'b' THEN 'builtin' ELSE 'libc' END` : `'libc'`;
  const locale = versionNum >= 170000 ? 'd.datlocale' : versionNum >= 150000 ? 'd.daticulocale' : 'NULL::text';
  const { rows } = await client.query<{
    locale: string | null;
    version: string;
    database: string;
    bytes: string;
    encoding: string;
    collate: string;
    ctype: string;
    provider: string;
    current_user: string;
    superuser: boolean;
    bypasses_rls: boolean;
    in_recovery: boolean;
    comment: string | null;
    tablespace: string;
    connection_limit: number;
  }>(`
    SELECT current_setting('server_version') AS version,
           d.datname AS database,
           pg_database_size(d.oid)::text AS bytes,
           pg_encoding_to_char(d.encoding) AS encoding,
           d.datcollate AS collate,
           d.datctype AS ctype,
           ${provider} AS provider, ${locale} AS locale,
           current_user AS current_user,
           r.rolsuper AS superuser, r.rolsuper OR r.rolbypassrls AS bypasses_rls,
           pg_is_in_recovery() AS in_recovery,
           shobj_description(d.oid, 'pg_database') AS comment,
           (SELECT spcname FROM pg_tablespace WHERE oid = d.dattablespace) AS tablespace,
           d.datconnlimit AS connection_limit
      FROM pg_database d, pg_roles r
     WHERE d.datname = current_database() AND r.rolname = current_user`);
  const row = rows[0]!;
  return {
    versionNum,
    major: Math.floor(versionNum / 10000),
    version: row.version.split(' ')[0]!,
    database: row.database,
    databaseBytes: Number(row.bytes),
    encoding: row.encoding,
    collate: row.collate,
    ctype: row.ctype,
    localeProvider: row.provider,
    locale: row.locale,
    currentUser: row.current_user,
    isSuperuser: row.superuser,
    bypassesRowSecurity: row.bypasses_rls,
    inRecovery: row.in_recovery,
    comment: row.comment,
    tablespace: row.tablespace,
    connectionLimit: row.connection_limit,
  };
}

/** Settings by name; a setting the server doesn't have is absent from the map. */
export async function readSettings(client: pg.Client, names: readonly string[]): Promise<Map<string, string>> {
  const { rows } = await client.query<{ name: string; setting: string }>('SELECT name, setting FROM pg_settings WHERE name = ANY($1)', [
    names,
  ]);
  return new Map(rows.map((r) => [r.name, r.setting]));
}
