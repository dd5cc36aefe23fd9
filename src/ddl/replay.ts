import type pg from 'pg';
import type { SchemaChangeReader, SchemaChangeSink } from '../apply/index.js';
import type { ChangeOrigin } from '../apply/index.js';
import type { Scope } from '../catalog/index.js';
import { messageOf, PgferryError } from '../errors.js';
import type { Logger } from '../log/index.js';
import { formatLsn, type Lsn } from '../replication/index.js';
import { oneLine, quoteIdent, serverDetail, SQLSTATE, sqlState } from '../plumbing/index.js';
import { captureNames, MESSAGES_FROM_MAJOR } from './capture.js';
import { parseSchemaChange, type DroppedObject, type SchemaChange } from './payload.js';
import { planReplay, StatementCursor } from './replay-plan.js';
import { dropStatements, rebuildStatements } from './rebuild.js';
import { assertRebuildable, CannotRebuild } from './rebuild-plan.js';

/** Commands that only grant or take privileges. */
const PRIVILEGE_TAGS: ReadonlySet<string> = new Set(['GRANT', 'REVOKE', 'ALTER DEFAULT PRIVILEGES']);

/** `--ddl`: carry schema changes to the target, or stop at the first one. */
export type DdlPolicy = 'apply' | 'stop';

export interface ReplayOptions {
  readonly migration: string;
  readonly sourceMajor: number;
  readonly scope: Scope;
  readonly policy: DdlPolicy;
  /** The commit position of a transaction whose schema changes were made on the target by hand (--skip-ddl-at). */
  readonly skipAt: Lsn | undefined;
  readonly logger: Logger;
  /** Whether a table's TRUNCATE (a PostgreSQL 10 source's payload) counts, or its copy holds it already. */
  readonly truncateCounts?: (table: string, commitLsn: Lsn) => boolean;
}

/** Replays the source's captured DDL on the target at its place in the stream (DESIGN decision 10). */
export class SchemaChangeReplayer implements SchemaChangeSink {
  readonly messagePrefix: string;
  readonly queueTable: { readonly schema: string; readonly name: string } | undefined;

  constructor(private readonly options: ReplayOptions) {
    const names = captureNames(options.migration);
    this.messagePrefix = names.prefix;
    this.queueTable = options.sourceMajor >= MESSAGES_FROM_MAJOR ? undefined : { schema: names.schema, name: names.queue };
  }

  forTransaction(): SchemaChangeReader {
    return new TransactionReplay(this.options);
  }
}

class TransactionReplay implements SchemaChangeReader {
  private readonly cursor = new StatementCursor();
  /** Objects the statement being run dropped (sql_drop comes before its ddl_command_end). */
  private dropped: readonly DroppedObject[] = [];

  constructor(private readonly options: ReplayOptions) {}

  async apply(target: pg.Client, payload: string, origin: ChangeOrigin): Promise<void> {
    const change = parseSchemaChange(payload);
    // Row data, not a schema change: carried whatever --ddl and --skip-ddl-at say.
    if (change.event === 'truncate') {
      if (this.options.truncateCounts?.(change.table, origin.commitLsn) === false) return;
      return this.truncate(target, change.table, origin);
    }
    if (origin.commitLsn === this.options.skipAt) {
      this.options.logger.warn(
        { tag: change.tag, lsn: formatLsn(origin.commitLsn) },
        'schema change skipped (--skip-ddl-at): the target has it already',
      );
      return;
    }
    if (change.event === 'error') {
      throw new PgferryError(
        'schema-change',
        `source: the schema-change capture could not record ${change.tag} (${change.error}) in transaction ${origin.xid} at ${formatLsn(origin.commitLsn)}: ${oneLine(change.query, 300)}`,
        {
          side: 'source',
          fix: `make the same change on the target by hand, then run sync with --skip-ddl-at ${formatLsn(origin.commitLsn)}`,
        },
      );
    }
    if (change.event === 'sql_drop') {
      this.dropped = change.objects;
      return;
    }
    const dropped = this.dropped;
    this.dropped = [];
    const step = planReplay(change, this.cursor, this.options.scope, dropped);
    const { logger } = this.options;
    const globals = this.cursor.takeGlobals();
    if (globals.length > 0) {
      logger.warn(
        { statements: globals.map((g) => oneLine(g, 200)), lsn: formatLsn(origin.commitLsn) },
        'commands on global objects (roles, databases, tablespaces) ran on the source: they are not carried; make them on the target yourself if it needs them',
      );
    }
    if (step.kind === 'skip') {
      logger.info({ tag: change.tag, why: step.why }, 'schema change on the source not replayed');
      return;
    }
    if (this.options.policy === 'stop') throw stopped(change, origin, step.kind === 'statement' ? step.text : change.query);
    if (step.kind === 'statement') {
      // As the source read it: names under its search_path, date, time and interval literals under its styles and time zone.
      const session = { search_path: change.searchPath.replace(/"\$user"|\$user/g, quoteIdent(change.user)), ...change.settings };
      await this.run(target, session, [step.text], change, origin);
    } else {
      await this.rebuild(target, change, dropped, origin);
    }
    for (const joined of change.joined.filter((j) => j.hadRows)) {
      logger.error(
        { table: joined.table },
        'a table joined the migration holding rows written while it had no key (it could not be published before): those rows were not streamed. ' +
          'Unless the command that made it made them on the target too (CREATE TABLE AS, SELECT INTO), copy them by hand or run sync --drop-existing; pgferry verify shows which',
      );
    }
  }

  /**
   * A PostgreSQL 10 source's TRUNCATE, one table per payload in the order the source truncated
   * them. CASCADE because a statement that truncated a referenced table and the tables
   * referencing it (together, or by its own CASCADE) sends the referenced one first, and the
   * target, holding the same foreign keys, refuses it alone; the tables CASCADE reaches are the
   * ones whose payloads follow. ONLY, as for pgoutput's TRUNCATE: each partition sends its own.
   */
  private async truncate(target: pg.Client, table: string, origin: ChangeOrigin): Promise<void> {
    try {
      await target.query(`TRUNCATE ONLY ${table} CASCADE`);
    } catch (error) {
      throw new PgferryError(
        'change-rejected',
        `target: could not truncate ${table} as the source did in transaction ${origin.xid} at ${formatLsn(origin.commitLsn)}: ${messageOf(error)}`,
        { side: 'target', fix: `make ${table} on the target match the source's (see pgferry verify), then run sync again`, cause: error },
      );
    }
    this.options.logger.info({ table, lsn: formatLsn(origin.commitLsn) }, 'truncated, as the source did');
  }

  /**
   * A command from inside another statement: rebuilt from the definitions the capture read. The
   * deparsed names are qualified under search_path = pg_catalog, as the capture ran.
   */
  private async rebuild(
    target: pg.Client,
    change: Extract<SchemaChange, { event: 'ddl_command_end' }>,
    dropped: readonly DroppedObject[],
    origin: ChangeOrigin,
  ): Promise<void> {
    const session = { search_path: 'pg_catalog, pg_temp' };
    try {
      assertRebuildable(change.tag);
      await this.run(target, session, dropStatements(dropped), change, origin);
      const previous = await this.setLocal(target, session);
      const statements = await rebuildStatements(target, change.tag, change.objects);
      await this.setLocal(target, previous);
      await this.run(target, session, statements, change, origin);
    } catch (error) {
      if (error instanceof CannotRebuild) throw cannotRebuild(change, origin, error.message);
      throw error;
    }
  }

  /** Runs the statements under the settings the source command saw; the apply's own come back after. */
  private async run(
    target: pg.Client,
    session: Readonly<Record<string, string>>,
    statements: readonly string[],
    change: Extract<SchemaChange, { event: 'ddl_command_end' }>,
    origin: ChangeOrigin,
  ): Promise<void> {
    const previous = await this.setLocal(target, session);
    const privileges = PRIVILEGE_TAGS.has(change.tag);
    for (const text of statements) {
      try {
        if (privileges) {
          if (await this.grantUnlessRoleMissing(target, text, change, origin)) continue;
        } else {
          await target.query(text);
        }
      } catch (error) {
        throw new PgferryError(
          'schema-change-failed',
          `target: the schema change ${change.tag} of transaction ${origin.xid} at ${formatLsn(origin.commitLsn)} failed: ${messageOf(error)}: ${oneLine(text, 300)}`,
          {
            side: 'target',
            fix: `make the target's schema match the source's for this object by hand, then run sync with --skip-ddl-at ${formatLsn(origin.commitLsn)}`,
            detail: serverDetail(error),
            cause: error,
          },
        );
      }
      this.options.logger.info(
        { tag: change.tag, statement: oneLine(text, 500), lsn: formatLsn(origin.commitLsn) },
        'schema change applied on the target',
      );
    }
    await this.setLocal(target, previous);
  }

  /**
   * Roles are global objects, made on the target apart from the migration (check names those the
   * schema needs): a grant to one the target lacks is said, not fatal. True when skipped.
   */
  private async grantUnlessRoleMissing(
    target: pg.Client,
    text: string,
    change: Extract<SchemaChange, { event: 'ddl_command_end' }>,
    origin: ChangeOrigin,
  ): Promise<boolean> {
    await target.query('SAVEPOINT pgferry_grant');
    try {
      await target.query(text);
      await target.query('RELEASE SAVEPOINT pgferry_grant');
      return false;
    } catch (error) {
      // A role the target lacks, or a table left out of the migration (a GRANT names no object the capture can place).
      if (sqlState(error) !== SQLSTATE.undefinedObject && sqlState(error) !== SQLSTATE.undefinedTable) throw error;
      await target.query('ROLLBACK TO SAVEPOINT pgferry_grant');
      this.options.logger.warn(
        { tag: change.tag, statement: oneLine(text, 300), lsn: formatLsn(origin.commitLsn), reason: messageOf(error) },
        'a privilege change on the source names a role (or a table) the target lacks: not applied; create it on the target and grant it by hand',
      );
      return true;
    }
  }

  /** Sets settings for the rest of the batch's transaction; returns the ones before. */
  private async setLocal(target: pg.Client, settings: Readonly<Record<string, string>>): Promise<Record<string, string>> {
    const names = Object.keys(settings);
    const { rows } = await target.query<{ name: string; before: string }>(
      `SELECT s.name, current_setting(s.name) AS before, set_config(s.name, s.value, true)
         FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS s(name, value, n) ORDER BY s.n`,
      [names, names.map((name) => settings[name]!)],
    );
    return Object.fromEntries(rows.map((r) => [r.name, r.before]));
  }
}

function stopped(change: SchemaChange, origin: ChangeOrigin, text: string): PgferryError {
  return new PgferryError(
    'schema-change',
    `source: schema change ${change.tag} in transaction ${origin.xid} at ${formatLsn(origin.commitLsn)}, and sync runs with --ddl stop: ${oneLine(text, 300)}`,
    {
      side: 'source',
      fix: 'run sync with --ddl apply to carry it (and the changes after it) to the target; nothing after it was applied',
    },
  );
}

function cannotRebuild(change: SchemaChange, origin: ChangeOrigin, why: string): PgferryError {
  return new PgferryError(
    'schema-change',
    `source: schema change ${change.tag} in transaction ${origin.xid} at ${formatLsn(origin.commitLsn)} ran inside another statement and can't be rebuilt (${why}): ${oneLine(change.query, 300)}`,
    {
      side: 'source',
      fix: `make the same change on the target by hand, then run sync with --skip-ddl-at ${formatLsn(origin.commitLsn)} to go on past it`,
    },
  );
}
