import { displayName } from '../../catalog/index.js';
import { listSome, plural, type Finding } from '../finding.js';
import type { SourceFacts, TargetFacts } from '../facts.js';
import { quoteIdent } from '../../plumbing/index.js';

export function privilegeFindings(source: SourceFacts, target: TargetFacts): Finding[] {
  const findings: Finding[] = [];
  const sourceRole = quoteIdent(source.server.currentUser);
  // Partitioned parents hold no rows and foreign tables' rows are never copied.
  const unreadable = source.tables.filter((t) => !t.readable && t.kind !== 'partitioned table' && t.kind !== 'foreign table');
  if (unreadable.length > 0) {
    const schemas = [...new Set(unreadable.map((t) => t.schema))];
    findings.push({
      id: 'source.select-privilege',
      severity: 'error',
      message: `role "${source.server.currentUser}" cannot read ${plural(unreadable.length, 'table')} on the source: ${listSome(unreadable.map(displayName))}`,
      why: 'every table in scope is copied with SELECT … under the migration snapshot',
      fix:
        schemas
          .map(
            (s) =>
              `GRANT USAGE ON SCHEMA ${quoteIdent(s)} TO ${sourceRole}; GRANT SELECT ON ALL TABLES IN SCHEMA ${quoteIdent(s)} TO ${sourceRole};`,
          )
          .join('\n') + '\nor leave those tables out with --exclude-table',
    });
  }
  if (!source.server.isSuperuser) {
    const notOwned = source.tables.filter((t) => !t.owned && (t.kind === 'table' || t.kind === 'partitioned table'));
    const problems: string[] = [];
    const fixes: string[] = [];
    if (!source.canCreateInDatabase) {
      problems.push(`has no CREATE privilege on database "${source.server.database}"`);
      fixes.push(`GRANT CREATE ON DATABASE ${quoteIdent(source.server.database)} TO ${sourceRole};`);
    }
    if (notOwned.length > 0) {
      problems.push(`does not own ${plural(notOwned.length, 'table')} (${listSome(notOwned.map(displayName), 5)})`);
      const owners = [...new Set(notOwned.map((t) => t.owner))].sort();
      fixes.push(`${owners.map((o) => `GRANT ${quoteIdent(o)} TO ${sourceRole};`).join(' ')} (membership in the tables' owners is enough)`);
    }
    if (problems.length > 0) {
      findings.push({
        id: 'source.publication-privilege',
        severity: 'error',
        message: `role "${source.server.currentUser}" cannot create the publication on the source: it ${problems.join(' and ')}`,
        why: 'pgferry publishes the tables in scope; CREATE PUBLICATION needs CREATE on the database and ownership of every published table',
        fix: [...fixes, "or connect to the source as the tables' owner or a superuser"].join('\n'),
      });
    }
  }
  const targetRole = quoteIdent(target.server.currentUser);
  if (!target.server.isSuperuser && !target.canCreateInDatabase) {
    findings.push({
      id: 'target.create-privilege',
      severity: 'error',
      message: `role "${target.server.currentUser}" cannot create schemas in database "${target.server.database}" on the target`,
      why: 'pgferry creates the source\'s schemas and its own "pgferry" state schema on the target',
      fix: `GRANT CREATE ON DATABASE ${quoteIdent(target.server.database)} TO ${targetRole};`,
    });
  }
  if (target.schemasWithoutCreate.length > 0) {
    findings.push({
      id: 'target.schema-create-privilege',
      severity: 'error',
      message: `role "${target.server.currentUser}" may not create objects in ${plural(target.schemasWithoutCreate.length, 'schema')} on the target: ${listSome(target.schemasWithoutCreate)}`,
      why: 'the tables, types and functions of those schemas are created there (since PostgreSQL 15, only the owner may create in public by default)',
      fix: target.schemasWithoutCreate.map((s) => `GRANT CREATE ON SCHEMA ${quoteIdent(s)} TO ${targetRole};`).join('\n'),
    });
  }
  if (!target.canSetReplicationRole) {
    findings.push({
      id: 'target.replication-role',
      severity: 'error',
      message: `role "${target.server.currentUser}" may not set session_replication_role on the target`,
      why: 'changes are applied with session_replication_role = replica so that target triggers and foreign keys do not act on rows the source already processed',
      fix: [
        target.server.major >= 15
          ? `GRANT SET ON PARAMETER session_replication_role TO ${targetRole}; (as a superuser)`
          : `connect to the target as a superuser (PostgreSQL ${target.server.major} has no GRANT SET ON PARAMETER)`,
        `Amazon RDS / Aurora: use a member of rds_superuser; Google Cloud SQL: a member of cloudsqlsuperuser; Azure: a member of azure_pg_admin`,
      ].join('\n'),
    });
  }
  return findings;
}
