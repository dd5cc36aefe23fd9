import { quoteIdent, quoteLiteral } from '../plumbing/index.js';

/**
 * How a server setting is changed where users actually run PostgreSQL. Every fix for a
 * server parameter shows the postgresql.conf line and its managed-service equivalents.
 */
export interface ParameterFix {
  readonly parameter: string;
  readonly value: string;
  /** Changing it needs a server restart (true for every parameter pgferry asks about). */
  readonly restart: boolean;
}

export function parameterFix({ parameter, value, restart }: ParameterFix): string {
  const restartNote = restart ? ', then restart the server' : ', then reload the configuration';
  return [
    `postgresql.conf: ${parameter} = ${value}${restartNote} (or ALTER SYSTEM SET ${parameter} = ${quoteLiteral(value)})`,
    `Amazon RDS / Aurora: set ${parameter} = ${value} in the DB parameter group${restart ? ' and reboot the instance' : ''}`,
    `Google Cloud SQL: set the database flag ${parameter} = ${value}${restart ? ' (the instance restarts)' : ''}`,
    `Azure Database for PostgreSQL: set the server parameter ${parameter} = ${value}${restart ? ' and restart the server' : ''}`,
  ].join('\n');
}

export const LOGICAL_DECODING_FIX = [
  `postgresql.conf: wal_level = logical, then restart the server (or ALTER SYSTEM SET wal_level = 'logical' and restart)`,
  `Amazon RDS / Aurora: set rds.logical_replication = 1 in the DB (or cluster) parameter group and reboot`,
  `Google Cloud SQL: set the database flag cloudsql.logical_decoding = on (the instance restarts)`,
  `Azure Database for PostgreSQL: Flexible Server: set wal_level = logical and restart; Single Server: set azure.replication_support = logical and restart`,
].join('\n');

export function replicationRoleFix(role: string): string {
  const quoted = quoteIdent(role);
  return [
    `self-managed: ALTER ROLE ${quoted} WITH REPLICATION; (as a superuser)`,
    `Amazon RDS / Aurora: GRANT rds_replication TO ${quoted};`,
    `Google Cloud SQL: ALTER USER ${quoted} WITH REPLICATION; (as a cloudsqlsuperuser member)`,
    `Azure Database for PostgreSQL: ALTER ROLE ${quoted} WITH REPLICATION; (as an azure_pg_admin member)`,
  ].join('\n');
}
