import { displayName, type TableInfo } from '../../catalog/index.js';
import { listSome, plural, type Finding } from '../finding.js';
import { formatBytes } from './size.js';
import type { SourceFacts, TargetFacts } from '../facts.js';
import { quoteIdent, quoteQualified } from '../../plumbing/index.js';

/**
 * Has no way to identify the old row of an UPDATE or DELETE in the change stream. An unlogged
 * table is never published (it writes no WAL), so its identity does not matter: sync leaves it
 * out, and the unlogged finding says what that means.
 */
function lacksReplicaIdentity(t: TableInfo): boolean {
  if (t.kind !== 'table' || t.unlogged) return false;
  switch (t.replicaIdentity) {
    case 'full':
      return false;
    case 'nothing':
      return true;
    case 'default':
      return !t.hasPrimaryKey;
    case 'index':
      return !t.hasIdentityIndex;
  }
}

const MAX_FIX_LINES = 20;

export function tableFindings(source: SourceFacts, target: TargetFacts): Finding[] {
  const findings: Finding[] = [];
  const tables = source.tables;
  if (tables.length === 0) {
    findings.push({
      id: 'scope.empty',
      severity: 'warning',
      message: 'no table is in scope on the source',
      why: 'there is nothing to copy or stream; the filters or the database may be wrong',
      fix: 'check --source and the --include/--exclude filters',
    });
  }

  const noIdentity = tables.filter(lacksReplicaIdentity);
  if (noIdentity.length > 0) {
    // A table that has a usable primary key only needs its identity pointed back at it.
    const lines = noIdentity
      .slice(0, MAX_FIX_LINES)
      .map((t) => `ALTER TABLE ${quoteQualified(t)} REPLICA IDENTITY ${t.hasPrimaryKey ? 'DEFAULT' : 'FULL'};`);
    if (noIdentity.length > MAX_FIX_LINES) lines.push(`… and the same for ${noIdentity.length - MAX_FIX_LINES} more`);
    findings.push({
      id: 'tables.no-replica-identity',
      severity: 'error',
      message: `${plural(noIdentity.length, 'table')} without a primary key or usable replica identity: ${listSome(noIdentity.map(displayName))}`,
      why:
        'once published, UPDATE and DELETE on such a table fail on the source ("cannot update table … because it does not have a replica identity"), ' +
        'and the change stream could not say which row changed',
      fix: `add a primary key (ALTER TABLE … ADD PRIMARY KEY (…)), the better fix, or log whole old rows:\n${lines.join('\n')}`,
    });
  }

  const hidden = tables.filter((t) => t.rowSecurityHidesRows);
  if (hidden.length > 0) {
    const role = source.server.currentUser;
    findings.push({
      id: 'tables.row-security',
      severity: 'error',
      message: `row-level security would hide rows of ${plural(hidden.length, 'table')} from ${role}: ${listSome(hidden.map(displayName))}`,
      why:
        "the copy and verify read through the table's policies: rows the policy hides would be missing on the target and verify would see the same hidden view on both sides; " +
        'pgferry turns row security off for its sessions, so the copy stops with an error instead',
      fix:
        `let the role bypass it: ALTER ROLE ${quoteIdent(role)} BYPASSRLS; (as a superuser), or for a table it owns that forces it, ` +
        `ALTER TABLE … NO FORCE ROW LEVEL SECURITY; for the migration:\n${hidden
          .slice(0, MAX_FIX_LINES)
          .map((t) =>
            t.owned
              ? `ALTER TABLE ${quoteQualified(t)} NO FORCE ROW LEVEL SECURITY;`
              : `-- ${displayName(t)} is owned by ${t.owner}: only BYPASSRLS helps`,
          )
          .join('\n')}`,
    });
  }

  const guarded = tables.filter((t) => t.rowSecurity);
  if (guarded.length > 0 && !target.server.bypassesRowSecurity) {
    const role = target.server.currentUser;
    findings.push({
      id: 'target.row-security',
      severity: 'warning',
      message: `${plural(guarded.length, 'table')} in scope ${guarded.length === 1 ? 'has' : 'have'} row-level security, and the target role ${role} does not bypass it: ${listSome(guarded.map(displayName))}`,
      why:
        'the schema copy enables the same policies on the target; sync and verify turn row security off for their sessions, so on a table ' +
        `${role} does not own (or one that forces it) they stop with an error rather than apply or compare through a policy`,
      fix: `ALTER ROLE ${quoteIdent(role)} BYPASSRLS; on the target (as a superuser), or migrate as the tables' owner without FORCE ROW LEVEL SECURITY`,
    });
  }

  const fullWithoutKey = tables.filter((t) => t.kind === 'table' && t.replicaIdentity === 'full' && !t.hasPrimaryKey);
  if (fullWithoutKey.length > 0) {
    findings.push({
      id: 'tables.replica-identity-full',
      severity: 'info',
      message: `${plural(fullWithoutKey.length, 'table')} ${fullWithoutKey.length === 1 ? 'has' : 'have'} REPLICA IDENTITY FULL and no key: ${listSome(fullWithoutKey.map(displayName))}`,
      why: 'their updates and deletes are applied one row at a time by matching whole rows, slower than keyed tables',
      fix: 'add a primary key where the data has one',
    });
  }

  // The cut-over counts a keyless table's changed rows inside the freeze through an index, and
  // builds one before the freeze where there is none (cutover/narrowing-indexes.ts): said here,
  // with the sizes, so the cost is known before the day, and the choice (a key, or
  // --no-check-indexes) is made then.
  const unindexed = fullWithoutKey.filter((t) => !t.unlogged && !t.hasLookupIndex).sort((a, b) => b.bytes - a.bytes);
  if (unindexed.length > 0) {
    const total = unindexed.reduce((sum, t) => sum + t.bytes, 0);
    findings.push({
      id: 'cutover.keyless-check-index',
      severity: 'info',
      message: `the cut-over will index ${plural(unindexed.length, 'table')} without a key or an index for its check (${formatBytes(total)} in all): ${listSome(unindexed.map((t) => `${displayName(t)} (${formatBytes(t.bytes)})`))}`,
      why:
        "inside the freeze the cut-over compares a keyless table's changed rows by looking them up through an index; for a table with none it builds one " +
        '(CREATE INDEX CONCURRENTLY pgferry_narrow_…, on a column it chooses) on each side before the freeze and drops it after: the I/O and time of an index build on the production source',
      fix:
        'nothing, if that build is acceptable; better, give these tables a primary key (sync also applies their updates faster), or an index; ' +
        `or cut over with --no-check-indexes: no index is built, and the check reads these tables whole inside the freeze, which then grows with their ${formatBytes(total)}`,
    });
  }

  const unlogged = tables.filter((t) => t.unlogged);
  if (unlogged.length > 0) {
    findings.push({
      id: 'tables.unlogged',
      severity: 'warning',
      message: `${plural(unlogged.length, 'unlogged table')}: ${listSome(unlogged.map(displayName))}`,
      why: 'unlogged tables write no WAL, so they are copied once at the snapshot but later changes never reach the target',
      fix: `make them logged before the migration, or leave them out with --exclude-table and reload them after the cut-over:\n${unlogged
        .slice(0, MAX_FIX_LINES)
        .map((t) => `ALTER TABLE ${quoteQualified(t)} SET LOGGED;`)
        .join('\n')}`,
    });
  }

  const foreign = tables.filter((t) => t.kind === 'foreign table');
  if (foreign.length > 0) {
    findings.push({
      id: 'objects.foreign-tables',
      severity: 'warning',
      message: `${plural(foreign.length, 'foreign table')}: ${listSome(foreign.map(displayName))}`,
      why: 'their rows live on another server; pgferry recreates the definitions but copies and streams no rows for them',
      fix: 'make sure the foreign servers and user mappings work from the target after the migration',
    });
  }

  const matviews = tables.filter((t) => t.kind === 'materialized view');
  if (matviews.length > 0) {
    findings.push({
      id: 'objects.materialized-views',
      severity: 'info',
      message: `${plural(matviews.length, 'materialized view')}: ${listSome(matviews.map(displayName))}`,
      why: 'materialized views are refreshed on the target after the copy; logical replication does not carry later refreshes',
      fix: 'refresh them on the target after the cut-over, as you do on the source',
    });
  }

  if (source.largeObjects > 0) {
    // A superuser reads every large object and pg_largeobject itself; another role only what it may.
    const readsAll = source.server.isSuperuser;
    findings.push({
      id: 'objects.large-objects',
      severity: readsAll ? 'info' : 'warning',
      message: `the source holds ${plural(source.largeObjects, 'large object')} (pg_largeobject)`,
      why:
        'logical replication does not carry them: clone copies them at its snapshot with owners, grants and comments, and the cut-over carries ' +
        'those made, changed or removed since (compared by content before its freeze, by row versions inside it)' +
        (readsAll
          ? ''
          : `; the source role "${source.server.currentUser}" is not a superuser, so an object it may not read stops the copy, and without pg_largeobject every pass compares content`),
      fix: readsAll
        ? 'nothing to do'
        : 'run as a superuser, or GRANT SELECT ON LARGE OBJECT … TO the migration role for each (lo_compat_privileges = on on the source lifts those checks for everyone)',
    });
  }

  if (target.nonEmptyTables.length > 0) {
    findings.push({
      id: 'target.tables-not-empty',
      severity: 'error',
      message: `${plural(target.nonEmptyTables.length, 'table')} in scope already ${target.nonEmptyTables.length === 1 ? 'holds' : 'hold'} rows on the target: ${listSome(target.nonEmptyTables.map(displayName))}`,
      why: "copying into them would mix old target rows with the source's; clone refuses such a target",
      fix: 'use an empty target database, empty those tables (TRUNCATE …), or leave them out with --exclude-table',
    });
  }
  if (target.unreadableTables.length > 0) {
    findings.push({
      id: 'target.tables-unreadable',
      severity: 'error',
      message: `${plural(target.unreadableTables.length, 'table')} in scope exist on the target but cannot be read by the target role: ${listSome(target.unreadableTables.map(displayName))}`,
      why: 'pgferry cannot tell whether they already hold rows, and it will need to write and verify them',
      fix: `${[...new Set(target.unreadableTables.map((t) => t.schema))]
        .map(
          (s) =>
            `GRANT USAGE ON SCHEMA ${quoteIdent(s)} TO ${quoteIdent(target.server.currentUser)}; GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA ${quoteIdent(s)} TO ${quoteIdent(target.server.currentUser)};`,
        )
        .join('\n')}`,
    });
  }
  return findings;
}
