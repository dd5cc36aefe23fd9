import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ServerInfo } from '../../src/catalog/server.js';
import type { TableInfo } from '../../src/catalog/tables.js';
import type { SourceFacts, TargetFacts } from '../../src/check/facts.js';
import { bySeverity, listSome, plural, type Finding } from '../../src/check/finding.js';
import { parameterFix, replicationRoleFix } from '../../src/check/managed-services.js';
import { databaseFindings } from '../../src/check/rules/database.js';
import { extensionFindings } from '../../src/check/rules/extensions.js';
import { privilegeFindings } from '../../src/check/rules/privileges.js';
import { replicationFindings } from '../../src/check/rules/replication.js';
import { OLDEST_SOURCE_MAJOR } from '../../src/catalog/index.js';
import { versionFindings } from '../../src/check/rules/servers.js';
import { formatBytes, sizeFindings } from '../../src/check/rules/size.js';
import { tableFindings } from '../../src/check/rules/tables.js';
import { evaluate } from '../../src/check/run.js';

const MB = 1024 * 1024;
const GB = 1024 * MB;

function server(overrides: Partial<ServerInfo> = {}): ServerInfo {
  return {
    versionNum: 170010,
    major: 17,
    version: '17.10',
    database: 'app',
    databaseBytes: 100 * MB,
    encoding: 'UTF8',
    collate: 'en_US.UTF-8',
    ctype: 'en_US.UTF-8',
    localeProvider: 'libc',
    locale: null,
    currentUser: 'migrator',
    isSuperuser: false,
    bypassesRowSecurity: false,
    inRecovery: false,
    comment: null,
    tablespace: 'pg_default',
    connectionLimit: -1,
    ...overrides,
  };
}

let nextOid = 16384;
function table(name: string, overrides: Partial<TableInfo> = {}): TableInfo {
  const [schema, relname] = name.includes('.') ? (name.split('.') as [string, string]) : ['public', name];
  return {
    oid: nextOid++,
    schema,
    name: relname,
    kind: 'table',
    unlogged: false,
    isPartition: false,
    replicaIdentity: 'default',
    hasPrimaryKey: true,
    hasIdentityIndex: false,
    hasLookupIndex: false,
    readable: true,
    owned: true,
    owner: 'migrator',
    rowSecurityHidesRows: false,
    rowSecurity: false,
    bytes: 8192,
    estimatedRows: 0,
    ...overrides,
  };
}

/** A source that passes every rule: logical WAL, free slot and sender, replication role, owned tables with keys. */
function source(overrides: Partial<SourceFacts> = {}): SourceFacts {
  return {
    server: server(),
    walLevel: 'logical',
    maxReplicationSlots: 10,
    maxWalSenders: 10,
    maxSlotWalKeepSizeMb: -1,
    idleSlotTimeoutSeconds: 0,
    slotsUsed: 0,
    inactiveSlots: [],
    sendersUsed: 0,
    eventTriggers: { allowed: true, why: 'the source role may create event triggers' },
    hasReplicationAttribute: true,
    managedReplicationRole: undefined,
    canCreateInDatabase: true,
    tables: [table('users'), table('orders')],
    largeObjects: 0,
    extensions: [{ name: 'plpgsql', version: '1.0' }],
    walBytesPerSecond: 1024,
    unsupportedObjects: [],
    requiredRoles: [],
    ...overrides,
  };
}

function target(overrides: Partial<TargetFacts> = {}): TargetFacts {
  return {
    server: server({ database: 'app_copy', currentUser: 'loader' }),
    canCreateInDatabase: true,
    canSetReplicationRole: true,
    availableExtensions: new Map([['plpgsql', new Set(['1.0'])]]),
    nonEmptyTables: [],
    unreadableTables: [],
    schemasWithoutCreate: [],
    roles: new Set(['loader']),
    wayBack: { walLevel: 'logical', freeSlots: 10, maxWalSenders: 10, mayReplicate: true },
    ...overrides,
  };
}

function ids(findings: readonly Finding[]): string[] {
  return findings.map((f) => f.id);
}

function find(findings: readonly Finding[], id: string): Finding {
  const found = findings.filter((f) => f.id === id);
  assert.equal(found.length, 1, `expected one finding ${id}, got ${JSON.stringify(ids(findings))}`);
  return found[0]!;
}

function absent(findings: readonly Finding[], id: string): void {
  assert.ok(!findings.some((f) => f.id === id), `unexpected finding ${id}`);
}

describe('evaluate', () => {
  test('a healthy pair has no errors or warnings, only the version and size notes', () => {
    const findings = evaluate(source(), target());
    assert.deepEqual(
      findings.filter((f) => f.severity !== 'info'),
      [],
    );
    assert.deepEqual(ids(findings).sort(), ['schema-changes.mode', 'source.size', 'source.version', 'target.version']);
  });

  test('every finding is complete', () => {
    const findings = evaluate(
      source({ walLevel: 'replica', slotsUsed: 10, tables: [table('t', { hasPrimaryKey: false })], largeObjects: 3 }),
      target({ canSetReplicationRole: false, nonEmptyTables: [{ schema: 'public', name: 't' }] }),
    );
    for (const f of findings) {
      assert.ok(f.id.length > 0 && f.message.length > 0 && f.why.length > 0 && f.fix.length > 0, JSON.stringify(f));
      assert.ok(['error', 'warning', 'info'].includes(f.severity));
    }
  });

  test('errors first, then warnings, then info; rule order kept within a severity', () => {
    const findings = evaluate(
      source({
        server: server({ version: '9.6.24', versionNum: 90624, major: 9 }),
        walLevel: 'replica',
        idleSlotTimeoutSeconds: 3600,
        largeObjects: 2,
        tables: [table('t1', { unlogged: true }), table('t2', { replicaIdentity: 'full', hasPrimaryKey: false })],
      }),
      target({ server: server({ encoding: 'LATIN1' }) }),
    );
    const severities = findings.map((f) => f.severity);
    const order = { error: 0, warning: 1, info: 2 };
    for (let i = 1; i < severities.length; i++) {
      assert.ok(order[severities[i - 1]!] <= order[severities[i]!], `out of order: ${JSON.stringify(severities)}`);
    }
    assert.deepEqual(ids(findings.filter((f) => f.severity === 'error')), ['source.version', 'source.wal-level', 'database.encoding']);
    assert.deepEqual(ids(findings.filter((f) => f.severity === 'warning')), [
      'source.idle-slot-timeout',
      'tables.unlogged',
      'objects.large-objects',
    ]);
  });

  test('bySeverity sorts errors before warnings before info', () => {
    const f = (id: string, severity: Finding['severity']): Finding => ({ id, severity, message: id, why: '', fix: '' });
    const sorted = [f('a', 'info'), f('b', 'warning'), f('c', 'error'), f('d', 'info'), f('e', 'error')].sort(bySeverity);
    assert.deepEqual(ids(sorted), ['c', 'e', 'b', 'a', 'd']);
  });
});

describe('servers: versions', () => {
  test(`a source older than PostgreSQL ${OLDEST_SOURCE_MAJOR} is an error`, () => {
    const findings = versionFindings(source({ server: server({ version: '9.6.24', versionNum: 90624, major: 9 }) }), target());
    const f = find(findings, 'source.version');
    assert.equal(f.severity, 'error');
    assert.match(f.message, /PostgreSQL 9\.6\.24/);
    assert.match(f.message, /PostgreSQL 10 or newer/);
    assert.match(f.fix, /upgrade the source/);
  });

  test('PostgreSQL 10 is old enough', () => {
    const f = find(
      versionFindings(source({ server: server({ version: '10.23', versionNum: 100023, major: 10 }) }), target()),
      'source.version',
    );
    assert.equal(f.severity, 'info');
  });

  test('both versions are reported as info', () => {
    const findings = versionFindings(source(), target());
    assert.equal(find(findings, 'source.version').severity, 'info');
    assert.match(find(findings, 'source.version').message, /source: PostgreSQL 17\.10, database "app" as "migrator"/);
    assert.equal(find(findings, 'target.version').severity, 'info');
    assert.match(find(findings, 'target.version').message, /target: PostgreSQL 17\.10, database "app_copy" as "loader"/);
  });

  test('a target older than the source is a warning', () => {
    const findings = versionFindings(
      source({ server: server({ version: '17.10', major: 17 }) }),
      target({ server: server({ version: '13.23', versionNum: 130023, major: 13 }) }),
    );
    const f = find(findings, 'target.older-than-source');
    assert.equal(f.severity, 'warning');
    assert.match(f.fix, /PostgreSQL 17 or newer/);
  });

  test('same or newer target: no warning', () => {
    absent(versionFindings(source(), target()), 'target.older-than-source');
    absent(
      versionFindings(
        source({ server: server({ version: '13.23', major: 13 }) }),
        target({ server: server({ version: '18.4', major: 18 }) }),
      ),
      'target.older-than-source',
    );
  });

  test('minor versions of the same major do not matter', () => {
    absent(
      versionFindings(
        source({ server: server({ version: '16.9', versionNum: 160009, major: 16 }) }),
        target({ server: server({ version: '16.1', versionNum: 160001, major: 16 }) }),
      ),
      'target.older-than-source',
    );
  });
});

describe('replication', () => {
  test('wal_level other than logical is an error with the managed-service fixes', () => {
    for (const walLevel of ['replica', 'minimal']) {
      const f = find(replicationFindings(source({ walLevel })), 'source.wal-level');
      assert.equal(f.severity, 'error');
      assert.match(f.message, new RegExp(`"${walLevel}"`));
      assert.match(f.fix, /wal_level = logical/);
      assert.match(f.fix, /rds\.logical_replication = 1/);
      assert.match(f.fix, /cloudsql\.logical_decoding = on/);
    }
    absent(replicationFindings(source()), 'source.wal-level');
  });

  test("fewer than two free replication slots (the migration's and one for the copy's snapshots) is an error asking for them", () => {
    const f = find(replicationFindings(source({ maxReplicationSlots: 4, slotsUsed: 3 })), 'source.replication-slots');
    assert.equal(f.severity, 'error');
    assert.match(f.message, /max_replication_slots = 4, 3 in use/);
    assert.match(f.fix, /max_replication_slots = 5/);
    assert.match(f.fix, /pg_drop_replication_slot/);
    absent(replicationFindings(source({ maxReplicationSlots: 4, slotsUsed: 2 })), 'source.replication-slots');
  });

  test('inactive slots are warnings: a pgferry one with its cleanup command, any other with its drop', () => {
    const facts = source({
      slotsUsed: 3,
      inactiveSlots: [
        { name: 'pgferry_shop', otherDatabase: null, retainedBytes: 3 * 1024 ** 3 },
        { name: 'old_replica', otherDatabase: null, retainedBytes: 1024 ** 2 },
        { name: "it's_gone", otherDatabase: 'archive', retainedBytes: null },
      ],
    });
    const ours = find(replicationFindings(facts), 'source.leftover-pgferry-slot');
    assert.equal(ours.severity, 'warning');
    assert.match(ours.message, /"pgferry_shop" \(holds 3(\.0)? GB of WAL\)/);
    assert.match(ours.fix, /pgferry cleanup --source … --target … --name shop/);
    const others = find(replicationFindings(facts), 'source.inactive-slots');
    assert.equal(others.severity, 'warning');
    assert.match(
      others.message,
      /2 replication slots .* "old_replica" \(holds 1(\.0)? MB of WAL\), "it's_gone" \(database archive, invalidated\)/,
    );
    assert.match(
      others.fix,
      /pg_drop_replication_slot\('old_replica'\); SELECT pg_drop_replication_slot\('it''s_gone'\); \(connected to database archive\)/,
    );
    absent(replicationFindings(source()), 'source.leftover-pgferry-slot');
    absent(replicationFindings(source()), 'source.inactive-slots');
  });

  test('max_replication_slots = 0 is an error', () => {
    find(replicationFindings(source({ maxReplicationSlots: 0, slotsUsed: 0 })), 'source.replication-slots');
  });

  test('no free WAL sender is an error', () => {
    const f = find(replicationFindings(source({ maxWalSenders: 2, sendersUsed: 2 })), 'source.wal-senders');
    assert.equal(f.severity, 'error');
    assert.match(f.fix, /max_wal_senders = 3/);
    absent(replicationFindings(source({ maxWalSenders: 2, sendersUsed: 1 })), 'source.wal-senders');
  });

  test('a role without REPLICATION and without a managed role cannot replicate', () => {
    const f = find(replicationFindings(source({ hasReplicationAttribute: false })), 'source.replication-privilege');
    assert.equal(f.severity, 'error');
    assert.match(f.message, /"migrator"/);
    assert.match(f.fix, /ALTER ROLE "migrator" WITH REPLICATION/);
    assert.match(f.fix, /GRANT rds_replication TO "migrator"/);
  });

  test('membership in rds_replication counts as able to replicate', () => {
    absent(
      replicationFindings(source({ hasReplicationAttribute: false, managedReplicationRole: 'rds_replication' })),
      'source.replication-privilege',
    );
  });

  test('membership in rds_superuser counts too', () => {
    absent(
      replicationFindings(source({ hasReplicationAttribute: false, managedReplicationRole: 'rds_superuser' })),
      'source.replication-privilege',
    );
  });

  test('idle_replication_slot_timeout > 0 is a warning to set it to 0', () => {
    const f = find(replicationFindings(source({ idleSlotTimeoutSeconds: 86400 })), 'source.idle-slot-timeout');
    assert.equal(f.severity, 'warning');
    assert.match(f.message, /86400 s/);
    assert.match(f.fix, /idle_replication_slot_timeout = 0, then reload/);
  });

  test('idle_replication_slot_timeout 0 or missing (before 18) is fine', () => {
    absent(replicationFindings(source({ idleSlotTimeoutSeconds: 0 })), 'source.idle-slot-timeout');
    absent(replicationFindings(source({ idleSlotTimeoutSeconds: undefined })), 'source.idle-slot-timeout');
  });

  test('a healthy source has no replication findings', () => {
    assert.deepEqual(replicationFindings(source()), []);
  });
});

describe('the way back', () => {
  test('a target that cannot be streamed from is a warning per missing piece, each naming --no-fallback', () => {
    const findings = evaluate(
      source(),
      target({ wayBack: { walLevel: 'replica', freeSlots: 0, maxWalSenders: 0, mayReplicate: false } }),
    ).filter((f) => f.id === 'target.way-back');
    assert.equal(findings.length, 4);
    for (const f of findings) {
      assert.equal(f.severity, 'warning');
      assert.match(f.fix, /pgferry cutover --no-fallback/);
    }
    assert.match(findings[0]!.message, /wal_level is "replica" on the target/);
    assert.match(findings[0]!.fix, /wal_level = logical/);
    assert.match(findings[3]!.message, /role "loader" may not create replication slots on the target/);
  });

  test('a target ready for it has no finding', () => {
    assert.deepEqual(
      evaluate(source(), target()).filter((f) => f.id === 'target.way-back'),
      [],
    );
  });
});

describe('privileges', () => {
  test('unreadable tables are an error with GRANTs per schema', () => {
    const f = find(
      privilegeFindings(
        source({
          tables: [
            table('a.t1', { readable: false }),
            table('a.t2', { readable: false }),
            table('b.t3', { readable: false }),
            table('c.ok'),
          ],
        }),
        target(),
      ),
      'source.select-privilege',
    );
    assert.equal(f.severity, 'error');
    assert.match(f.message, /cannot read 3 tables on the source: a\.t1, a\.t2, b\.t3/);
    assert.match(f.fix, /GRANT USAGE ON SCHEMA "a" TO "migrator"; GRANT SELECT ON ALL TABLES IN SCHEMA "a" TO "migrator";/);
    assert.match(f.fix, /SCHEMA "b"/);
    assert.doesNotMatch(f.fix, /SCHEMA "c"/);
    assert.match(f.fix, /--exclude-table/);
  });

  test('an unreadable partitioned table is not reported (its partitions are)', () => {
    absent(
      privilegeFindings(source({ tables: [table('p', { kind: 'partitioned table', readable: false })] }), target()),
      'source.select-privilege',
    );
  });

  test('no CREATE on the source database blocks the publication', () => {
    const f = find(privilegeFindings(source({ canCreateInDatabase: false }), target()), 'source.publication-privilege');
    assert.equal(f.severity, 'error');
    assert.match(f.message, /has no CREATE privilege on database "app"/);
    assert.match(f.fix, /GRANT CREATE ON DATABASE "app" TO "migrator";/);
  });

  test('tables the role does not own block the publication', () => {
    const f = find(
      privilegeFindings(
        source({ tables: [table('mine'), table('theirs', { owned: false }), table('part', { kind: 'partitioned table', owned: false })] }),
        target(),
      ),
      'source.publication-privilege',
    );
    assert.match(f.message, /does not own 2 tables \(public\.theirs, public\.part\)/);
  });

  test('not owning a materialized view or foreign table does not matter (they are not published)', () => {
    absent(
      privilegeFindings(
        source({
          tables: [table('mv', { kind: 'materialized view', owned: false }), table('ft', { kind: 'foreign table', owned: false })],
        }),
        target(),
      ),
      'source.publication-privilege',
    );
  });

  test('both problems in one finding', () => {
    const f = find(
      privilegeFindings(source({ canCreateInDatabase: false, tables: [table('x', { owned: false })] }), target()),
      'source.publication-privilege',
    );
    assert.match(f.message, /has no CREATE privilege on database "app" and does not own 1 table/);
  });

  test('a source superuser needs neither', () => {
    absent(
      privilegeFindings(
        source({ server: server({ isSuperuser: true }), canCreateInDatabase: false, tables: [table('x', { owned: false })] }),
        target(),
      ),
      'source.publication-privilege',
    );
  });

  test('no CREATE on the target database is an error unless superuser', () => {
    const f = find(privilegeFindings(source(), target({ canCreateInDatabase: false })), 'target.create-privilege');
    assert.equal(f.severity, 'error');
    assert.match(f.fix, /GRANT CREATE ON DATABASE "app_copy" TO "loader";/);
    absent(
      privilegeFindings(source(), target({ canCreateInDatabase: false, server: server({ isSuperuser: true }) })),
      'target.create-privilege',
    );
  });

  test('session_replication_role not settable: GRANT SET ON PARAMETER on 15+', () => {
    const f = find(privilegeFindings(source(), target({ canSetReplicationRole: false })), 'target.replication-role');
    assert.equal(f.severity, 'error');
    assert.match(f.fix, /GRANT SET ON PARAMETER session_replication_role TO "loader";/);
  });

  test('session_replication_role not settable on 14: a superuser is needed', () => {
    const f = find(
      privilegeFindings(
        source(),
        target({ canSetReplicationRole: false, server: server({ major: 14, version: '14.18', currentUser: 'loader' }) }),
      ),
      'target.replication-role',
    );
    assert.match(f.fix, /connect to the target as a superuser \(PostgreSQL 14 has no GRANT SET ON PARAMETER\)/);
  });

  test('role names are quoted in fixes', () => {
    const f = find(
      privilegeFindings(source({ server: server({ currentUser: 'Odd"Name' }), canCreateInDatabase: false }), target()),
      'source.publication-privilege',
    );
    assert.match(f.fix, /TO "Odd""Name";/);
  });
});

describe('tables', () => {
  test('no table in scope is a warning', () => {
    const f = find(tableFindings(source({ tables: [] }), target()), 'scope.empty');
    assert.equal(f.severity, 'warning');
  });

  test('replica identity: which tables lack one', () => {
    const tables = [
      table('pk'),
      table('nokey', { hasPrimaryKey: false }),
      table('nothing', { replicaIdentity: 'nothing' }),
      table('full_nokey', { replicaIdentity: 'full', hasPrimaryKey: false }),
      table('idx_ok', { replicaIdentity: 'index', hasPrimaryKey: false, hasIdentityIndex: true }),
      table('idx_gone', { replicaIdentity: 'index', hasPrimaryKey: true, hasIdentityIndex: false }),
      table('parted', { kind: 'partitioned table', hasPrimaryKey: false }),
      table('mv', { kind: 'materialized view', hasPrimaryKey: false }),
      table('ft', { kind: 'foreign table', hasPrimaryKey: false }),
    ];
    const f = find(tableFindings(source({ tables }), target()), 'tables.no-replica-identity');
    assert.equal(f.severity, 'error');
    assert.match(
      f.message,
      /^3 tables without a primary key or usable replica identity: public\.nokey, public\.nothing, public\.idx_gone$/,
    );
    assert.match(f.fix, /ALTER TABLE "public"\."nokey" REPLICA IDENTITY FULL;/);
    assert.match(f.fix, /ADD PRIMARY KEY/);
  });

  test('the fix lists at most 20 tables and says how many more', () => {
    const tables = Array.from({ length: 25 }, (_, i) => table(`t${String(i).padStart(2, '0')}`, { hasPrimaryKey: false }));
    const f = find(tableFindings(source({ tables }), target()), 'tables.no-replica-identity');
    assert.equal((f.fix.match(/REPLICA IDENTITY FULL;/g) ?? []).length, 20);
    assert.match(f.fix, /… and the same for 5 more/);
    assert.match(f.message, /^25 tables .* and 15 more$/);
  });

  test('REPLICA IDENTITY FULL without a key is info', () => {
    const f = find(
      tableFindings(source({ tables: [table('f', { replicaIdentity: 'full', hasPrimaryKey: false })] }), target()),
      'tables.replica-identity-full',
    );
    assert.equal(f.severity, 'info');
    assert.match(f.message, /^1 table has REPLICA IDENTITY FULL/);
    absent(
      tableFindings(source({ tables: [table('f', { replicaIdentity: 'full', hasPrimaryKey: true })] }), target()),
      'tables.replica-identity-full',
    );
  });

  test("keyless tables the cut-over's check must index are named with their sizes, largest first, and both ways out", () => {
    const tables = [
      table('small_log', { replicaIdentity: 'full', hasPrimaryKey: false, bytes: 16 * 1024 }),
      table('big_log', { replicaIdentity: 'full', hasPrimaryKey: false, bytes: 3 * 1024 ** 3 }),
      table('indexed_log', { replicaIdentity: 'full', hasPrimaryKey: false, hasLookupIndex: true, bytes: 1024 ** 3 }),
      table('scratch', { replicaIdentity: 'full', hasPrimaryKey: false, unlogged: true }),
      table('keyed', { replicaIdentity: 'full', hasPrimaryKey: true }),
    ];
    const f = find(tableFindings(source({ tables }), target()), 'cutover.keyless-check-index');
    assert.equal(f.severity, 'info');
    assert.equal(
      f.message,
      'the cut-over will index 2 tables without a key or an index for its check (3.0 GB in all): public.big_log (3.0 GB), public.small_log (16.0 kB)',
    );
    assert.match(f.fix, /--no-check-indexes/);
    assert.match(f.fix, /primary key/);
    absent(tableFindings(source({ tables: tables.slice(2) }), target()), 'cutover.keyless-check-index');
  });

  test('row security that would hide rows from the source role is an error naming the table and both fixes', () => {
    const tables = [table('docs', { rowSecurity: true, rowSecurityHidesRows: true }), table('open', { rowSecurity: true })];
    const f = find(tableFindings(source({ tables }), target()), 'tables.row-security');
    assert.equal(f.severity, 'error');
    assert.match(f.message, /row-level security would hide rows of 1 table from migrator: public\.docs$/);
    assert.match(f.fix, /BYPASSRLS/);
    assert.match(f.fix, /ALTER TABLE "public"\."docs" NO FORCE ROW LEVEL SECURITY;/);
    absent(tableFindings(source({ tables: [table('open', { rowSecurity: true })] }), target()), 'tables.row-security');
  });

  test('tables with row security and a target role that does not bypass it are a warning', () => {
    const tables = [table('docs', { rowSecurity: true })];
    const f = find(tableFindings(source({ tables }), target()), 'target.row-security');
    assert.equal(f.severity, 'warning');
    assert.match(f.fix, /BYPASSRLS/);
    absent(tableFindings(source({ tables }), target({ server: { ...target().server, bypassesRowSecurity: true } })), 'target.row-security');
  });

  test('an unlogged table needs no replica identity: it is never published', () => {
    // sync leaves unlogged tables out of the publication (they write no WAL), so their UPDATEs
    // and DELETEs keep working whatever their replica identity; only the unlogged warning applies.
    const tables = [
      table('cache', { unlogged: true, replicaIdentity: 'nothing' }),
      table('scratch', { unlogged: true, hasPrimaryKey: false }),
    ];
    const findings = tableFindings(source({ tables }), target());
    absent(findings, 'tables.no-replica-identity');
    find(findings, 'tables.unlogged');
  });

  test('unlogged tables are a warning with SET LOGGED', () => {
    const f = find(tableFindings(source({ tables: [table('u', { unlogged: true })] }), target()), 'tables.unlogged');
    assert.equal(f.severity, 'warning');
    assert.match(f.fix, /ALTER TABLE "public"\."u" SET LOGGED;/);
  });

  test('foreign tables are a warning, materialized views info', () => {
    const findings = tableFindings(
      source({ tables: [table('ft', { kind: 'foreign table' }), table('mv', { kind: 'materialized view' })] }),
      target(),
    );
    assert.equal(find(findings, 'objects.foreign-tables').severity, 'warning');
    assert.equal(find(findings, 'objects.materialized-views').severity, 'info');
  });

  test('large objects: a warning when the source role may not read them all, info for a superuser', () => {
    const f = find(tableFindings(source({ largeObjects: 1 }), target()), 'objects.large-objects');
    assert.equal(f.severity, 'warning');
    assert.match(f.message, /1 large object \(/);
    assert.match(f.why, /the cut-over carries those made, changed or removed since/);
    assert.match(f.fix, /GRANT SELECT ON LARGE OBJECT/);
    const superuser = find(
      tableFindings(source({ largeObjects: 1, server: server({ isSuperuser: true }) }), target()),
      'objects.large-objects',
    );
    assert.equal(superuser.severity, 'info');
    absent(tableFindings(source({ largeObjects: 0 }), target()), 'objects.large-objects');
  });

  test('tables holding rows on the target are an error', () => {
    const f = find(
      tableFindings(
        source(),
        target({
          nonEmptyTables: [
            { schema: 'public', name: 'users' },
            { schema: 'Sales', name: 'orders' },
          ],
        }),
      ),
      'target.tables-not-empty',
    );
    assert.equal(f.severity, 'error');
    assert.match(f.message, /2 tables in scope already hold rows on the target: public\.users, "Sales"\.orders/);
  });

  test('a healthy set of tables has no findings', () => {
    assert.deepEqual(tableFindings(source(), target()), []);
  });
});

describe('extensions', () => {
  test('an extension the target cannot install is an error', () => {
    const f = find(
      extensionFindings(source({ extensions: [{ name: 'postgis', version: '3.4.2' }] }), target()),
      'extensions.missing-on-target',
    );
    assert.equal(f.severity, 'error');
    assert.match(f.message, /"postgis" 3\.4\.2/);
    assert.match(f.fix, /DROP EXTENSION "postgis";/);
    assert.match(f.fix, /PostgreSQL 17/);
  });

  test('another version on the target is a warning listing the versions', () => {
    const f = find(
      extensionFindings(
        source({ extensions: [{ name: 'hstore', version: '1.7' }] }),
        target({ availableExtensions: new Map([['hstore', new Set(['1.8', '1.4'])]]) }),
      ),
      'extensions.version-differs',
    );
    assert.equal(f.severity, 'warning');
    assert.match(f.message, /the target offers 1\.4, 1\.8/);
  });

  test('replication machinery (pglogical) is said to be left out, not required on the target', () => {
    const findings = extensionFindings(source({ extensions: [{ name: 'pglogical', version: '2.4.2' }] }), target());
    assert.deepEqual(
      findings.map((f) => [f.id, f.severity]),
      [['extensions.replication-machinery-left-out', 'info']],
    );
    assert.match(findings[0]!.message, /"pglogical" 2\.4\.2 on the source is replication machinery/);
  });

  test('the same version available: nothing', () => {
    assert.deepEqual(
      extensionFindings(
        source({ extensions: [{ name: 'hstore', version: '1.8' }] }),
        target({ availableExtensions: new Map([['hstore', new Set(['1.7', '1.8'])]]) }),
      ),
      [],
    );
  });
});

describe('database: encoding', () => {
  function encodingFinding(from: string, to: string): Finding | undefined {
    return databaseFindings(source({ server: server({ encoding: from }) }), target({ server: server({ encoding: to }) })).find(
      (f) => f.id === 'database.encoding',
    );
  }

  test('same encoding: nothing', () => {
    for (const enc of ['UTF8', 'LATIN1', 'SQL_ASCII']) assert.equal(encodingFinding(enc, enc), undefined);
  });

  test('UTF8 to LATIN1 can lose characters: error', () => {
    const f = encodingFinding('UTF8', 'LATIN1');
    assert.equal(f?.severity, 'error');
    assert.match(f?.message ?? '', /source UTF8, target LATIN1/);
    assert.match(f?.fix ?? '', /ENCODING 'UTF8'/);
  });

  test('LATIN1 to UTF8 converts without loss: warning', () => {
    const f = encodingFinding('LATIN1', 'UTF8');
    assert.equal(f?.severity, 'warning');
    assert.doesNotMatch(f?.why ?? '', /SQL_ASCII/);
  });

  test('SQL_ASCII to UTF8: warning about unchecked bytes', () => {
    const f = encodingFinding('SQL_ASCII', 'UTF8');
    assert.equal(f?.severity, 'warning');
    assert.match(f?.why ?? '', /SQL_ASCII holds unchecked bytes/);
  });

  test('SQL_ASCII to LATIN1: warning (no conversion from SQL_ASCII)', () => {
    assert.equal(encodingFinding('SQL_ASCII', 'LATIN1')?.severity, 'warning');
  });

  test('LATIN1 to WIN1252 (neither UTF8): error', () => {
    assert.equal(encodingFinding('LATIN1', 'WIN1252')?.severity, 'error');
  });
});

describe('database: collation', () => {
  function collationFinding(s: Partial<ServerInfo>, t: Partial<ServerInfo>): Finding | undefined {
    return databaseFindings(source({ server: server(s) }), target({ server: server(t) })).find((f) => f.id === 'database.collation');
  }

  test('C and POSIX are the same', () => {
    assert.equal(collationFinding({ collate: 'C', ctype: 'C' }, { collate: 'POSIX', ctype: 'POSIX' }), undefined);
    assert.equal(collationFinding({ collate: 'POSIX', ctype: 'C' }, { collate: 'C', ctype: 'POSIX' }), undefined);
  });

  test('utf8 spellings are the same', () => {
    assert.equal(
      collationFinding({ collate: 'en_US.utf8', ctype: 'en_US.UTF8' }, { collate: 'en_US.UTF-8', ctype: 'en_US.utf-8' }),
      undefined,
    );
  });

  test('C vs en_US.UTF-8 is a warning naming both', () => {
    const f = collationFinding({ collate: 'C', ctype: 'C' }, { collate: 'en_US.UTF-8', ctype: 'C' });
    assert.equal(f?.severity, 'warning');
    assert.match(f?.message ?? '', /LC_COLLATE "C" → "en_US\.UTF-8"/);
    assert.doesNotMatch(f?.message ?? '', /LC_CTYPE/);
    assert.match(f?.fix ?? '', /LC_COLLATE 'C' LC_CTYPE 'C'/);
  });

  test('a different ctype alone is reported', () => {
    const f = collationFinding({ ctype: 'de_DE.UTF-8' }, { ctype: 'en_US.UTF-8' });
    assert.match(f?.message ?? '', /LC_CTYPE "de_DE\.UTF-8" → "en_US\.UTF-8"/);
  });

  test('a different locale provider is reported', () => {
    const f = collationFinding({ localeProvider: 'libc' }, { localeProvider: 'icu' });
    assert.match(f?.message ?? '', /locale provider libc → icu/);
  });

  test('identical locales: no database findings at all', () => {
    assert.deepEqual(databaseFindings(source(), target()), []);
  });
});

describe('database: comment, default tablespace, connection limit', () => {
  const findings = (s: Partial<ServerInfo>, t: Partial<ServerInfo>) =>
    databaseFindings(source({ server: server(s) }), target({ server: server({ database: 'shop', ...t }) }));

  test('each difference is reported with the statement that makes the target the same', () => {
    const found = findings({ comment: "the shop's data", tablespace: 'fast', connectionLimit: 50 }, {});
    assert.deepEqual(
      found.map((f) => [f.id, f.severity, f.fix]),
      [
        ['database.comment', 'info', `COMMENT ON DATABASE "shop" IS 'the shop''s data';`],
        [
          'database.tablespace',
          'info',
          `ALTER DATABASE "shop" SET TABLESPACE "fast"; (with no one connected), or keep the target's if its storage is where you want it`,
        ],
        ['database.connection-limit', 'info', 'ALTER DATABASE "shop" CONNECTION LIMIT 50;'],
      ],
    );
  });

  test('a comment only the target has is named too; equal properties say nothing', () => {
    assert.equal(findings({}, { comment: 'rehearsal' })[0]?.fix, 'COMMENT ON DATABASE "shop" IS NULL;');
    assert.deepEqual(findings({ comment: 'same', tablespace: 'fast' }, { comment: 'same', tablespace: 'fast' }), []);
  });
});

describe('size', () => {
  test('formatBytes', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(1), '1 B');
    assert.equal(formatBytes(1023), '1023 B');
    assert.equal(formatBytes(1024), '1.0 kB');
    assert.equal(formatBytes(1536), '1.5 kB');
    assert.equal(formatBytes(99 * 1024), '99.0 kB');
    assert.equal(formatBytes(100 * 1024), '100 kB');
    assert.equal(formatBytes(40 * MB), '40.0 MB');
    assert.equal(formatBytes(512 * MB), '512 MB');
    assert.equal(formatBytes(1.25 * GB), '1.3 GB');
    assert.equal(formatBytes(3 * 1024 * GB), '3.0 TB');
    assert.equal(formatBytes(2048 * 1024 * GB), '2048 TB');
  });

  test('the size note is info, with the WAL estimate when the rate is known', () => {
    // 400 MB at the assumed 40 MB/s: 10 s of copy; 1 MB/s of WAL × 10 s × 2 = 20 MB retained.
    const findings = sizeFindings(source({ server: server({ databaseBytes: 400 * MB }), walBytesPerSecond: MB, maxSlotWalKeepSizeMb: -1 }));
    assert.deepEqual(ids(findings), ['source.size']);
    const f = find(findings, 'source.size');
    assert.equal(f.severity, 'info');
    assert.match(f.message, /the source database is 400 MB; the copy takes roughly 10 s at 40\.0 MB\/s/);
    assert.match(f.message, /average write rate of 1\.0 MB\/s that is about 20\.0 MB of WAL/);
  });

  test('without walBytesPerSecond (before 14) the note says the rate is not visible', () => {
    const f = find(sizeFindings(source({ walBytesPerSecond: undefined })), 'source.size');
    assert.match(f.message, /not visible before PostgreSQL 14/);
  });

  test('copy time in minutes and hours', () => {
    assert.match(find(sizeFindings(source({ server: server({ databaseBytes: 40 * MB * 600 }) })), 'source.size').message, /roughly 10 min/);
    assert.match(
      find(sizeFindings(source({ server: server({ databaseBytes: 40 * MB * 7200 }) })), 'source.size').message,
      /roughly 2\.0 h/,
    );
    assert.match(find(sizeFindings(source({ server: server({ databaseBytes: 0 }) })), 'source.size').message, /roughly 1 s/);
  });

  test('max_slot_wal_keep_size = -1 (unlimited): never a warning', () => {
    const findings = sizeFindings(
      source({ server: server({ databaseBytes: 1024 * GB }), walBytesPerSecond: 100 * MB, maxSlotWalKeepSizeMb: -1 }),
    );
    absent(findings, 'source.slot-wal-limit');
  });

  test('max_slot_wal_keep_size unknown (before 13): never a warning', () => {
    absent(
      sizeFindings(source({ server: server({ databaseBytes: 1024 * GB }), maxSlotWalKeepSizeMb: undefined })),
      'source.slot-wal-limit',
    );
  });

  test('a limit below twice the expected retention is a warning', () => {
    // 20 MB retained (see above); twice that is 40 MB; a 32 MB limit is too small.
    const f = find(
      sizeFindings(source({ server: server({ databaseBytes: 400 * MB }), walBytesPerSecond: MB, maxSlotWalKeepSizeMb: 32 })),
      'source.slot-wal-limit',
    );
    assert.equal(f.severity, 'warning');
    assert.match(f.message, /max_slot_wal_keep_size is 32\.0 MB on the source, less than twice the 20\.0 MB/);
    assert.match(f.fix, /max_slot_wal_keep_size = -1/);
  });

  test('a limit above twice the expected retention is fine', () => {
    absent(
      sizeFindings(source({ server: server({ databaseBytes: 400 * MB }), walBytesPerSecond: MB, maxSlotWalKeepSizeMb: 64 })),
      'source.slot-wal-limit',
    );
  });

  test('without the rate, a limit smaller than the database is a warning', () => {
    const f = find(
      sizeFindings(source({ server: server({ databaseBytes: 10 * GB }), walBytesPerSecond: undefined, maxSlotWalKeepSizeMb: 1024 })),
      'source.slot-wal-limit',
    );
    assert.match(f.message, /max_slot_wal_keep_size is 1\.0 GB on the source, smaller than the database \(10\.0 GB\)/);
  });

  test('without the rate, a limit larger than the database is fine', () => {
    absent(
      sizeFindings(source({ server: server({ databaseBytes: 10 * GB }), walBytesPerSecond: undefined, maxSlotWalKeepSizeMb: 20 * 1024 })),
      'source.slot-wal-limit',
    );
  });

  test('a database that writes no WAL is not at risk whatever the limit', () => {
    absent(
      sizeFindings(source({ server: server({ databaseBytes: 10 * GB }), walBytesPerSecond: 0, maxSlotWalKeepSizeMb: 1 })),
      'source.slot-wal-limit',
    );
  });
});

describe('finding helpers', () => {
  test('listSome shows ten names and counts the rest', () => {
    const names = Array.from({ length: 13 }, (_, i) => `t${i}`);
    assert.equal(listSome(names.slice(0, 10)), names.slice(0, 10).join(', '));
    assert.equal(listSome(names), `${names.slice(0, 10).join(', ')} and 3 more`);
    assert.equal(listSome(names, 2), 't0, t1 and 11 more');
    assert.equal(listSome([]), '');
  });

  test('plural', () => {
    assert.equal(plural(1, 'table'), '1 table');
    assert.equal(plural(0, 'table'), '0 tables');
    assert.equal(plural(2, 'index', 'indexes'), '2 indexes');
  });

  test('parameterFix covers postgresql.conf and the managed services', () => {
    const fix = parameterFix({ parameter: 'max_wal_senders', value: '12', restart: true });
    assert.match(fix, /postgresql\.conf: max_wal_senders = 12, then restart the server/);
    assert.match(fix, /ALTER SYSTEM SET max_wal_senders = '12'/);
    assert.match(fix, /Amazon RDS \/ Aurora: .* and reboot the instance/);
    assert.match(fix, /Google Cloud SQL: set the database flag max_wal_senders = 12 \(the instance restarts\)/);
    assert.match(fix, /Azure Database for PostgreSQL: .* and restart the server/);
    const reload = parameterFix({ parameter: 'x', value: '0', restart: false });
    assert.match(reload, /then reload the configuration/);
    assert.doesNotMatch(reload, /reboot|restart/);
  });

  test('replicationRoleFix quotes the role', () => {
    assert.match(replicationRoleFix('we"ird'), /ALTER ROLE "we""ird" WITH REPLICATION;/);
  });
});
