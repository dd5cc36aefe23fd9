import type { Logger } from '../log/index.js';
import { Scope, type ScopeFilter } from '../catalog/index.js';
import { describeConnection, withConnection, type ConnectionSpec } from '../config/index.js';
import { PgferryError, messageOf, type Side } from '../errors.js';
import { sqlState } from '../plumbing/index.js';
import { readSourceFacts, readTargetFacts, type SourceFacts, type TargetFacts } from './facts.js';
import { bySeverity, type CheckReport, type Finding } from './finding.js';
import { databaseFindings } from './rules/database.js';
import { extensionFindings } from './rules/extensions.js';
import { privilegeFindings } from './rules/privileges.js';
import { replicationFindings, schemaChangeFindings, wayBackFindings } from './rules/replication.js';
import { schemaFindings } from './rules/schema.js';
import { versionFindings } from './rules/servers.js';
import { sizeFindings } from './rules/size.js';
import { tableFindings } from './rules/tables.js';
import { pgbouncerFindings } from './pgbouncer.js';
import type { PoolOptions } from '../pgbouncer/index.js';

export interface CheckOptions {
  readonly source: ConnectionSpec;
  readonly target: ConnectionSpec;
  readonly filter: ScopeFilter;
  /** `--pgbouncer` and `--pgbouncer-ini`: check what a cut-over through PgBouncer needs too. */
  readonly pgbouncer?: Omit<PoolOptions, 'maxPauseMs'>;
  readonly logger?: Logger;
  /**
   * The target database does not exist yet (`--all-databases` creates it from template0 before
   * syncing): `target` then reaches another database of the target instance for the server's
   * facts, and the database's own are those of a new, empty one.
   */
  readonly targetToBeCreated?: boolean;
}

/**
 * Preflight: reads what both servers hold and says, finding by finding, whether a migration
 * between them can run and what to change first. It reads only; it changes nothing.
 */
export async function runCheck(options: CheckOptions): Promise<CheckReport> {
  const scope = new Scope(options.filter);
  const log = options.logger;
  log?.debug({ source: describeConnection(options.source) }, 'reading the source');
  const source = await withConnection(options.source, ({ client }) => reading('source', () => readSourceFacts(client, scope)));
  log?.debug({ version: source.server.version, tables: source.tables.length }, 'source read');
  scope.assertPatternsMatch(source.tables, `the source database "${source.server.database}"`);
  log?.debug({ target: describeConnection(options.target) }, 'reading the target');
  const read = await withConnection(options.target, ({ client }) => reading('target', () => readTargetFacts(client, source.tables)));
  const target = options.targetToBeCreated ? { ...read, nonEmptyTables: [], unreadableTables: [], schemasWithoutCreate: [] } : read;
  log?.debug({ version: target.server.version, nonEmptyTables: target.nonEmptyTables.length }, 'target read');
  const pool = options.pgbouncer ? await pgbouncerFindings(options.pgbouncer, options.source) : [];
  const findings = [...evaluate(source, target), ...pool].sort(bySeverity);
  return {
    ready: !findings.some((f) => f.severity === 'error'),
    source: summary(options.source, source),
    target: summary(options.target, target),
    findings,
  };
}

/** Every rule over the facts; pure, so the order of findings is stable: errors first. */
export function evaluate(source: SourceFacts, target: TargetFacts): Finding[] {
  return [
    ...versionFindings(source, target),
    ...replicationFindings(source),
    ...wayBackFindings(target.wayBack, target.server.currentUser),
    ...schemaChangeFindings(source),
    ...privilegeFindings(source, target),
    ...tableFindings(source, target),
    ...extensionFindings(source, target),
    ...databaseFindings(source, target),
    ...schemaFindings(source, target),
    ...sizeFindings(source),
  ].sort(bySeverity);
}

function summary(spec: ConnectionSpec, facts: { server: { version: string; database: string } }) {
  return { connection: describeConnection(spec), version: facts.server.version, database: facts.server.database };
}

async function reading<T>(side: Side, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof PgferryError) throw error;
    const code = sqlState(error);
    throw new PgferryError('query', `${side}: reading the catalogs failed: ${messageOf(error)}${code ? ` (SQLSTATE ${code})` : ''}`, {
      side,
      fix: `check that the ${side} role may read the system catalogs, and that the connection stays up`,
      cause: error,
    });
  }
}
