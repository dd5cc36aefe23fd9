import type pg from 'pg';
import type { ScopeFilter } from '../catalog/index.js';
import { messageOf, PgferryError } from '../errors.js';
import { inTransaction, quoteIdent, quoteLiteral, SQLSTATE, sqlState } from '../plumbing/index.js';
import { SCHEMA_CHANGE_PREFIX } from '../replication/index.js';
import { scopeCondition } from './scope-sql.js';
import { TABLE_DEFINITION_JSON } from './table-definition-sql.js';

/** The source schema holding the capture of every migration from this database; never migrated itself. */
export const CAPTURE_SCHEMA = 'pgferry_capture';

/**
 * pgoutput carries logical messages from PostgreSQL 14 on; before that, the capture writes the
 * same payload as a row of a published table, which reaches the stream at the same place.
 */
export const MESSAGES_FROM_MAJOR = 14;

/**
 * pgoutput carries TRUNCATE from PostgreSQL 11; on a 10 source a trigger on each published
 * table puts it into the queue table instead (truncate-capture.ts).
 */
export const TRUNCATE_IN_STREAM_FROM_MAJOR = 11;

/** What the TRUNCATE trigger of every migration is called, before its migration's name. */
export const TRUNCATE_TRIGGER_PREFIX = 'pgferry_truncate_';

/** What one migration's capture is called on the source. */
export interface CaptureNames {
  /** Prefix of its logical messages: each migration reads only its own. */
  readonly prefix: string;
  readonly schema: string;
  readonly function: string;
  readonly endTrigger: string;
  readonly dropTrigger: string;
  /** The table that carries the payloads where pgoutput has no messages. */
  readonly queue: string;
  /** Where pgoutput has no TRUNCATE: the trigger on each published table, and its function. */
  readonly truncateTrigger: string;
  readonly truncateFunction: string;
}

export function captureNames(migration: string): CaptureNames {
  return {
    prefix: `${SCHEMA_CHANGE_PREFIX}${migration}`,
    schema: CAPTURE_SCHEMA,
    function: `capture_${migration}`,
    endTrigger: `pgferry_ddl_${migration}`,
    dropTrigger: `pgferry_ddl_drop_${migration}`,
    queue: `queue_${migration}`,
    truncateTrigger: `${TRUNCATE_TRIGGER_PREFIX}${migration}`,
    truncateFunction: `truncate_${migration}`,
  };
}

/** The TRUNCATE trigger on one table (quoted, qualified; '%s' inside the event trigger's format()). */
export function truncateTriggerStatement(table: string, names: CaptureNames): string {
  return `CREATE TRIGGER ${quoteIdent(names.truncateTrigger)} AFTER TRUNCATE ON ${table} FOR EACH STATEMENT EXECUTE PROCEDURE ${quoteIdent(names.schema)}.${quoteIdent(names.truncateFunction)}()`;
}

export interface CaptureSetup {
  readonly migration: string;
  readonly publication: string;
  readonly filter: ScopeFilter;
  readonly sourceMajor: number;
}

/**
 * Installs the event triggers that put each DDL command into the change stream (DESIGN
 * decision 10). The function runs as its owner (pgferry's role: only it may add to the
 * publication), so it qualifies every name with pg_catalog and keeps the caller's search_path
 * only to record it. It never fails the application's command: an error of its own becomes a
 * payload that stops sync, loudly, at its place.
 */
export async function installCapture(source: pg.Client, setup: CaptureSetup): Promise<void> {
  const names = captureNames(setup.migration);
  const schema = quoteIdent(names.schema);
  const fn = `${schema}.${quoteIdent(names.function)}`;
  const queue = `${schema}.${quoteIdent(names.queue)}`;
  const viaMessages = setup.sourceMajor >= MESSAGES_FROM_MAJOR;
  const emit = viaMessages
    ? `PERFORM pg_catalog.pg_logical_emit_message(true, ${quoteLiteral(names.prefix)}, payload::text);`
    : `INSERT INTO ${queue} (payload) VALUES (payload::text);`;
  const inScope = scopeCondition(setup.filter, 'n.nspname', 'c.relname');
  // Migration names are [a-z0-9_]: the statement holds no % but format()'s own.
  const truncateTrigger =
    setup.sourceMajor < TRUNCATE_IN_STREAM_FROM_MAJOR
      ? `EXECUTE pg_catalog.format(${quoteLiteral(truncateTriggerStatement('%s', names))}, r.name);`
      : '';
  const body = `
DECLARE
  caller_path text := pg_catalog.current_setting('search_path');
  caller_datestyle text := pg_catalog.current_setting('datestyle');
  caller_intervalstyle text := pg_catalog.current_setting('intervalstyle');
  objects jsonb;
  joined jsonb := '[]';
  payload jsonb;
  had_rows boolean;
  r record;
BEGIN
  -- Its own ALTER PUBLICATION below fires the trigger again.
  IF pg_catalog.current_setting('pgferry.capturing', true) OPERATOR(pg_catalog.=) 'on' THEN RETURN; END IF;
  -- The caller's path would resolve names in this function as the caller chose: set for the
  -- rest of the transaction, and set back at the end (a transaction-local change either way).
  PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
  -- The definitions read below print dates and intervals as these settings say (a partition's
  -- bound, a default): in ISO, which any server reads back alike, not in the caller's style
  -- ('13/12/2026 12:30:00 IST' is day first, and IST is India's or Israel's time).
  PERFORM pg_catalog.set_config('datestyle', 'ISO', true);
  PERFORM pg_catalog.set_config('intervalstyle', 'postgres', true);
  BEGIN
    IF tg_event = 'sql_drop' THEN
      SELECT coalesce(jsonb_agg(jsonb_build_object('type', object_type, 'identity', object_identity, 'schema', schema_name,
                                                   'original', original, 'temporary', is_temporary)), '[]')
        INTO objects FROM pg_event_trigger_dropped_objects();
    ELSE
      -- With each object, its definition now: what the target is rebuilt from when the command
      -- ran inside another statement (a DO block, a function) and can't be replayed as sent.
      SELECT coalesce(jsonb_agg(jsonb_build_object('type', d.object_type, 'identity', d.object_identity, 'schema', d.schema_name,
                                                   'inExtension', d.in_extension, 'tag', d.command_tag,
          -- The column a sequence belongs to (serial): set once its table exists.
          'ownedBy', (SELECT format('%I.%I.%I', tn.nspname, t.relname, a.attname)
                        FROM pg_depend o JOIN pg_class t ON t.oid = o.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace
                        JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = o.refobjsubid
                       WHERE c.relkind = 'S' AND o.classid = 'pg_class'::regclass AND o.objid = d.objid AND o.deptype = 'a'
                         AND o.refclassid = 'pg_class'::regclass AND o.refobjsubid > 0),
          'definition',
          CASE
            WHEN d.classid = 'pg_class'::regclass AND c.relkind = 'i' THEN to_jsonb(pg_get_indexdef(d.objid))
            WHEN d.classid = 'pg_class'::regclass AND c.relkind = 'v' THEN to_jsonb('CREATE OR REPLACE VIEW ' || d.object_identity || ' AS ' || pg_get_viewdef(d.objid))
            WHEN d.classid = 'pg_trigger'::regclass THEN to_jsonb(pg_get_triggerdef(d.objid))
            -- An identity column's sequence comes with its table.
            WHEN d.classid = 'pg_class'::regclass AND c.relkind = 'S' AND EXISTS (
                   SELECT 1 FROM pg_depend s WHERE s.classid = 'pg_class'::regclass AND s.objid = d.objid AND s.deptype = 'i')
              THEN to_jsonb('identity'::text)
            WHEN d.classid = 'pg_class'::regclass AND c.relkind = 'S' THEN (
              SELECT to_jsonb(format('CREATE SEQUENCE IF NOT EXISTS %s AS %s INCREMENT %s MINVALUE %s MAXVALUE %s START %s CACHE %s %s',
                                     d.object_identity, format_type(q.seqtypid, NULL), q.seqincrement, q.seqmin, q.seqmax, q.seqstart,
                                     q.seqcache, CASE WHEN q.seqcycle THEN 'CYCLE' ELSE 'NO CYCLE' END))
                FROM pg_sequence q WHERE q.seqrelid = d.objid)
            WHEN d.classid = 'pg_proc'::regclass AND NOT EXISTS (SELECT 1 FROM pg_aggregate a WHERE a.aggfnoid = d.objid)
              THEN to_jsonb(pg_get_functiondef(d.objid))
            WHEN c.relkind IN ('r', 'p') THEN ${TABLE_DEFINITION_JSON}
          END)), '[]')
        INTO objects
        FROM pg_event_trigger_ddl_commands() d
        -- A column's or a constraint's command changes its table: the table's definition goes with it.
        LEFT JOIN pg_class c ON c.oid = CASE WHEN d.classid = 'pg_constraint'::regclass
                                             THEN (SELECT k.conrelid FROM pg_constraint k WHERE k.oid = d.objid)
                                             WHEN d.classid = 'pg_class'::regclass THEN d.objid END;
      -- Tables created or given a key in scope join the publication now: their rows stream from
      -- the next one. A partitioned table's command (ATTACH PARTITION) names the parent: its
      -- partitions are looked at too.
      FOR r IN
        WITH RECURSIVE touched(oid) AS (
          SELECT d.objid FROM pg_event_trigger_ddl_commands() d WHERE d.classid = 'pg_class'::regclass
          UNION
          SELECT i.inhrelid FROM pg_inherits i JOIN touched t ON i.inhparent = t.oid
        )
        SELECT DISTINCT c.oid, pg_catalog.format('%I.%I', n.nspname, c.relname) AS name
          FROM touched d
          JOIN pg_class c ON c.oid = d.oid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'r' AND c.relpersistence = 'p'
           AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgferry', 'pgferry_capture')
           AND (${inScope})
           AND (c.relreplident = 'f'
                OR (c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))
                OR (c.relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)))
           AND NOT EXISTS (SELECT 1 FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
                            WHERE p.pubname = ${quoteLiteral(setup.publication)} AND pr.prrelid = c.oid)
      LOOP
        PERFORM pg_catalog.set_config('pgferry.capturing', 'on', true);
        EXECUTE pg_catalog.format('ALTER PUBLICATION %I ADD TABLE %s', ${quoteLiteral(setup.publication)}, r.name);
        ${truncateTrigger}
        PERFORM pg_catalog.set_config('pgferry.capturing', 'off', true);
        EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %s)', r.name) INTO STRICT had_rows;
        joined := joined || jsonb_build_array(jsonb_build_object('table', r.name, 'hadRows', had_rows));
      END LOOP;
    END IF;
    payload := jsonb_build_object('v', 1, 'event', tg_event, 'tag', tg_tag, 'query', pg_catalog.current_query(),
                                  'searchPath', caller_path,
                                  -- The caller's role ("$user" of its search_path): this function runs as its owner.
                                  'user', CASE WHEN pg_catalog.current_setting('role') = 'none' THEN session_user::text ELSE pg_catalog.current_setting('role') END,
                                  -- How the caller's statement reads date, time and interval literals, for its replay.
                                  'settings', jsonb_build_object('datestyle', caller_datestyle, 'intervalstyle', caller_intervalstyle,
                                                                 'timezone', pg_catalog.current_setting('timezone')),
                                  'objects', objects, 'joined', joined);
  EXCEPTION WHEN OTHERS THEN
    payload := jsonb_build_object('v', 1, 'event', 'error', 'tag', tg_tag, 'query', pg_catalog.current_query(),
                                  'searchPath', caller_path, 'error', SQLERRM);
  END;
  ${emit}
  PERFORM pg_catalog.set_config('search_path', caller_path, true);
  PERFORM pg_catalog.set_config('datestyle', caller_datestyle, true);
  PERFORM pg_catalog.set_config('intervalstyle', caller_intervalstyle, true);
END`;
  try {
    await inTransaction(source, async () => {
      // A capture installed before (a sync resuming) must not carry pgferry's own set-up to the target.
      await source.query(`SELECT set_config('pgferry.capturing', 'on', true)`);
      await source.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await source.query(`REVOKE ALL ON SCHEMA ${schema} FROM PUBLIC`);
      if (!viaMessages) await source.query(`CREATE TABLE IF NOT EXISTS ${queue} (id bigserial PRIMARY KEY, payload text NOT NULL)`);
      await source.query(
        `CREATE OR REPLACE FUNCTION ${fn}() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER AS ${dollarQuote(body)}`,
      );
      await source.query(`REVOKE ALL ON FUNCTION ${fn}() FROM PUBLIC`);
      const procedure = setup.sourceMajor >= 11 ? 'FUNCTION' : 'PROCEDURE';
      for (const [trigger, event] of [
        [names.endTrigger, 'ddl_command_end'],
        [names.dropTrigger, 'sql_drop'],
      ] as const) {
        await source.query(`DROP EVENT TRIGGER IF EXISTS ${quoteIdent(trigger)}`);
        await source.query(`CREATE EVENT TRIGGER ${quoteIdent(trigger)} ON ${event} EXECUTE ${procedure} ${fn}()`);
      }
    });
  } catch (error) {
    throw new PgferryError('query', `source: cannot install the schema-change capture: ${messageOf(error)}`, {
      side: 'source',
      fix:
        sqlState(error) === SQLSTATE.insufficientPrivilege
          ? 'event triggers need a superuser (rds_superuser on RDS and Aurora); run sync with --ddl stop to go on without them, see pgferry check'
          : 'see pgferry check for what the source needs',
      cause: error,
    });
  }
}

/** The queue table to publish where the source has no logical messages in pgoutput. */
export function captureQueue(migration: string, sourceMajor: number): string | undefined {
  if (sourceMajor >= MESSAGES_FROM_MAJOR) return undefined;
  const names = captureNames(migration);
  return `${quoteIdent(names.schema)}.${quoteIdent(names.queue)}`;
}

/** Removes one migration's capture; the schema goes with the last one. Safe to run twice: false when nothing was there. */
export async function removeCapture(source: pg.Client, migration: string): Promise<boolean> {
  const names = captureNames(migration);
  const schema = quoteIdent(names.schema);
  const { rows: found } = await source.query<{ present: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname IN ($1, $2))
         OR EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $3 AND p.proname IN ($4, $5)) AS present`,
    [names.endTrigger, names.dropTrigger, names.schema, names.function, names.truncateFunction],
  );
  if (!found[0]!.present) return false;
  await inTransaction(source, async () => {
    await source.query(`DROP EVENT TRIGGER IF EXISTS ${quoteIdent(names.endTrigger)}`);
    await source.query(`DROP EVENT TRIGGER IF EXISTS ${quoteIdent(names.dropTrigger)}`);
    await source.query(`DROP FUNCTION IF EXISTS ${schema}.${quoteIdent(names.function)}()`);
    // With it, its TRUNCATE trigger on every table (PostgreSQL 10 sources).
    await source.query(`DROP FUNCTION IF EXISTS ${schema}.${quoteIdent(names.truncateFunction)}() CASCADE`);
    await source.query(`DROP TABLE IF EXISTS ${schema}.${quoteIdent(names.queue)}`);
    const { rows } = await source.query<{ empty: boolean }>(
      `SELECT NOT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_namespace n ON d.refclassid = 'pg_namespace'::regclass AND d.refobjid = n.oid WHERE n.nspname = $1) AS empty`,
      [names.schema],
    );
    if (rows[0]?.empty) await source.query(`DROP SCHEMA IF EXISTS ${schema}`);
  });
  return true;
}

/**
 * Runs pgferry's own DDL on a server whose capture is installed (its state schema on an old
 * source that becomes the way back's target, a publication's refresh) without putting it into
 * the stream: the capture function returns at once while `pgferry.capturing` is on.
 */
export async function withCaptureSuspended<T>(client: pg.Client, work: () => Promise<T>): Promise<T> {
  await client.query(`SELECT set_config('pgferry.capturing', 'on', false)`);
  try {
    return await work();
  } finally {
    await client.query(`SELECT set_config('pgferry.capturing', 'off', false)`);
  }
}

/**
 * Whether the source role may create event triggers, tried rather than guessed (managed services
 * grant it under different roles): made and rolled back in one transaction.
 */
export async function mayCreateEventTriggers(source: pg.Client): Promise<{ readonly allowed: boolean; readonly why: string }> {
  try {
    await source.query('BEGIN');
    await source.query(`CREATE FUNCTION pg_temp.pgferry_probe() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END$$`);
    await source.query(`CREATE EVENT TRIGGER pgferry_probe ON ddl_command_end EXECUTE PROCEDURE pg_temp.pgferry_probe()`);
    return { allowed: true, why: 'the source role may create event triggers' };
  } catch (error) {
    return { allowed: false, why: messageOf(error) };
  } finally {
    await source.query('ROLLBACK').catch(() => undefined);
  }
}

function dollarQuote(body: string): string {
  let tag = '$capture$';
  for (let i = 0; body.includes(tag); i++) tag = `$capture${i}$`;
  return `${tag}${body}${tag}`;
}
