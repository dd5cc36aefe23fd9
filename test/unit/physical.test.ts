import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConnectionSpec } from '../../src/config/index.js';
import { lastProgress } from '../../src/physical/base-backup.js';
import { majorOfVersionLine } from '../../src/physical/binaries.js';
import { physicalFindings, type PhysicalFacts } from '../../src/physical/check-rules.js';
import { passwordFileLine, quoteConfigValue, quoteConninfoValue, replicationConnectionString } from '../../src/physical/conninfo.js';
import { standbyFiles } from '../../src/physical/standby-config.js';
import { settingsToCarry, settingsToCompare, type CarriedSetting } from '../../src/physical/carried-settings.js';
import { describeComplaint, lastComplaint } from '../../src/physical/server-log.js';
import { originOf, type SettingOrigin, type SourceSetting } from '../../src/physical/source-settings.js';

const spec: ConnectionSpec = {
  side: 'source',
  host: 'db.example.com',
  hostaddr: undefined,
  port: 5432,
  database: 'shop',
  user: "o'brien",
  password: 's3cret:with\\odd',
  passwordSource: 'connection string',
  sslmode: 'verify-full',
  sslrootcert: '/etc/ssl/my root.crt',
  sslcert: undefined,
  sslkey: undefined,
  connectTimeoutSeconds: 10,
  keepalives: true,
  keepalivesIdleSeconds: 30,
  applicationName: 'pgferry',
  options: undefined,
  peerTimeoutMs: 60_000,
};

describe('physical: how the source is reached by pg_basebackup and the standby', () => {
  it('writes every resolved parameter but the password, quoted the way libpq reads them', () => {
    const text = replicationConnectionString(spec, { application_name: 'pgferry_phys_standby', passfile: '/data/pgferry_primary.pgpass' });
    assert.equal(
      text,
      "host=db.example.com port=5432 user='o\\'brien' sslmode=verify-full sslrootcert='/etc/ssl/my root.crt' connect_timeout=10 keepalives=1 keepalives_idle=30 application_name=pgferry_phys_standby passfile=/data/pgferry_primary.pgpass",
    );
    assert.doesNotMatch(text, /s3cret/);
    assert.equal(quoteConninfoValue('a\\b'), "'a\\\\b'");
    assert.equal(quoteConninfoValue(''), "''");
  });

  it('puts the password in a password-file line that serves any database, escaping colons and backslashes', () => {
    assert.equal(passwordFileLine(spec, spec.password!), "db.example.com:5432:*:o'brien:s3cret\\:with\\\\odd\n");
    assert.equal(passwordFileLine({ ...spec, host: '/var/run/postgresql', user: 'app' }, 'pw'), 'localhost:5432:*:app:pw\n');
  });

  it('quotes a postgresql.conf value with doubled quotes', () => {
    assert.equal(quoteConfigValue("user='o\\'brien'"), "'user=''o\\\\''brien'''");
  });
});

describe('physical: the standby settings for each version', () => {
  const settings = { primaryConninfo: "host=h user='u'", slot: 'pgferry_phys_standby', port: 5433, carried: [] };
  it('from 12: standby.signal, and the settings appended to postgresql.auto.conf', () => {
    const files = standbyFiles({ major: 15, ...settings });
    assert.deepEqual(
      files.map((f) => [f.name, f.append]),
      [
        ['standby.signal', false],
        ['postgresql.auto.conf', true],
      ],
    );
    assert.match(files[1]!.content, /^primary_conninfo = 'host=h user=''u'''$/m);
    assert.match(files[1]!.content, /^primary_slot_name = 'pgferry_phys_standby'$/m);
    assert.match(files[1]!.content, /^port = 5433$/m);
  });
  it("writes the carried settings first, quoted, so pgferry's own lines come after and win", () => {
    const carried: CarriedSetting[] = [
      { name: 'max_wal_senders', value: '20', shown: '20', printable: true, origin: { kind: 'command-line' }, belowPrimary: true },
      { name: 'datestyle', value: "ISO, DMY'", shown: '', printable: false, origin: { kind: 'environment' }, belowPrimary: false },
    ];
    const auto = standbyFiles({ major: 15, ...settings, carried })[1]!.content.split('\n');
    assert.deepEqual(auto.slice(1, 3), ["max_wal_senders = '20'", "datestyle = 'ISO, DMY'''"]);
    assert.ok(auto.indexOf("max_wal_senders = '20'") < auto.indexOf('port = 5433'));
    // Before 12 the carried settings go to postgresql.auto.conf too, recovery.conf keeps the recovery ones.
    const old = standbyFiles({ major: 11, ...settings, port: undefined, carried });
    assert.deepEqual(
      old.map((f) => f.name),
      ['recovery.conf', 'postgresql.auto.conf'],
    );
    assert.match(old[1]!.content, /^max_wal_senders = '20'$/m);
  });
  it('before 12: recovery.conf with standby_mode, the port still in postgresql.auto.conf', () => {
    const files = standbyFiles({ major: 11, ...settings });
    assert.deepEqual(
      files.map((f) => f.name),
      ['recovery.conf', 'postgresql.auto.conf'],
    );
    assert.match(files[0]!.content, /^standby_mode = 'on'$/m);
    assert.match(files[0]!.content, /^primary_slot_name = 'pgferry_phys_standby'$/m);
    assert.doesNotMatch(files[0]!.content, /port/);
    assert.deepEqual(
      standbyFiles({ major: 11, ...settings, port: undefined }).map((f) => f.name),
      ['recovery.conf'],
    );
  });
});

describe('physical: what the programs print', () => {
  it('reads the major version of a --version line', () => {
    assert.deepEqual(majorOfVersionLine('pg_basebackup (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)'), { version: '15.18', major: 15 });
    assert.deepEqual(majorOfVersionLine('postgres (PostgreSQL) 9.6.24'), { version: '9.6', major: 9.6 });
    assert.equal(majorOfVersionLine('something else'), undefined);
  });
  it("reads the last progress report of pg_basebackup's standard error", () => {
    assert.deepEqual(lastProgress('  1024/40960 kB (2%), 0/1 tablespace\r 2048/40960 kB (5%), 0/1 tablespace\r'), {
      doneKb: 2048,
      totalKb: 40960,
    });
    assert.equal(lastProgress('pg_basebackup: error: connection failed'), undefined);
  });
});

describe('physical: the preflight rules', () => {
  const facts: PhysicalFacts = {
    source: {
      version: '15.18',
      major: 15,
      currentUser: 'postgres',
      walLevel: 'replica',
      maxWalSenders: 10,
      walSendersInUse: 0,
      maxReplicationSlots: 10,
      slotsInUse: 0,
      canReplicate: true,
      canFreeze: true,
      clusterBytes: 1e9,
      unsized: [],
      dataChecksums: false,
      slot: { exists: false, active: false },
      settings: { settings: [], filesOutside: [], filesVisible: true },
    },
    slot: 'pgferry_phys_standby',
    replicationConnection: { ok: true },
    programs: {
      pg_basebackup: { path: '/bin/pg_basebackup', version: '15.18', major: 15 },
      postgres: { path: '/bin/postgres', version: '15.18', major: 15 },
    },
    pgdata: { path: '/data', state: { kind: 'absent', freeBytes: 1e12 } },
    runningAsRoot: false,
  };
  const errors = (f: PhysicalFacts) =>
    physicalFindings(f)
      .filter((x) => x.severity === 'error')
      .map((x) => x.id);

  it('a ready source and host have no error', () => {
    assert.deepEqual(errors(facts), []);
  });
  it('names each thing that blocks a physical move', () => {
    assert.deepEqual(errors({ ...facts, source: { ...facts.source, walLevel: 'minimal' } }), ['source.wal_level']);
    assert.deepEqual(errors({ ...facts, source: { ...facts.source, maxWalSenders: 1 } }), ['source.wal-senders']);
    assert.deepEqual(errors({ ...facts, source: { ...facts.source, canReplicate: false } }), ['source.replication-role']);
    assert.deepEqual(errors({ ...facts, source: { ...facts.source, canFreeze: false } }), ['source.freeze']);
    assert.deepEqual(errors({ ...facts, replicationConnection: { ok: false, message: 'no pg_hba.conf entry' } }), [
      'source.replication-connection',
    ]);
    assert.deepEqual(errors({ ...facts, pgdata: { path: '/data', state: { kind: 'not-empty', entries: ['PG_VERSION'] } } }), [
      'target.pgdata',
    ]);
    assert.deepEqual(errors({ ...facts, pgdata: { path: '/data', state: { kind: 'empty', freeBytes: 5e8 } } }), ['target.disk']);
    assert.deepEqual(errors({ ...facts, runningAsRoot: true }), ['target.root']);
    assert.deepEqual(
      errors({ ...facts, programs: { ...facts.programs, pg_basebackup: { path: '/bin/pg_basebackup', version: '16.4', major: 16 } } }),
      ['target.version'],
    );
    assert.deepEqual(errors({ ...facts, programs: { ...facts.programs, postgres: '--pg-bin /x has no postgres' } }), ['target.postgres']);
    assert.deepEqual(errors({ ...facts, source: { ...facts.source, slot: { exists: true, active: true } } }), ['source.slot-exists']);
  });
  it('a source before 12 is a warning: the cut-over cannot promote it', () => {
    const found = physicalFindings({ ...facts, source: { ...facts.source, major: 11, version: '11.22' } });
    assert.equal(found.find((f) => f.id === 'source.promote')?.severity, 'warning');
    assert.equal(
      physicalFindings(facts).find((f) => f.id === 'source.promote'),
      undefined,
    );
  });
  it('a slot an earlier run left is a warning: the next run uses it', () => {
    const found = physicalFindings({ ...facts, source: { ...facts.source, slot: { exists: true, active: false } } });
    assert.equal(found.find((f) => f.id === 'source.slot-exists')?.severity, 'warning');
  });
});

describe('physical: the settings a base backup does not carry', () => {
  const setting = (name: string, value: string, origin: SettingOrigin, more: Partial<SourceSetting> = {}): SourceSetting => ({
    name,
    value,
    shown: value,
    vartype: 'integer',
    context: 'postmaster',
    origin,
    ...more,
  });
  const commandLine: SettingOrigin = { kind: 'command-line' };
  const inCopy: SettingOrigin = { kind: 'in-copy' };

  it("classifies pg_settings' source and sourcefile against the data directory", () => {
    assert.deepEqual(originOf('command line', null, '/data'), { kind: 'command-line' });
    assert.deepEqual(originOf('environment variable', null, '/data'), { kind: 'environment' });
    assert.deepEqual(originOf('configuration file', '/data/postgresql.conf', '/data'), { kind: 'in-copy' });
    assert.deepEqual(originOf('configuration file', '/data/postgresql.auto.conf', '/data/'), { kind: 'in-copy' });
    assert.deepEqual(originOf('configuration file', '/data2/extra.conf', '/data'), { kind: 'outside-file', file: '/data2/extra.conf' });
    assert.deepEqual(originOf('configuration file', '/etc/postgresql/15/main/postgresql.conf', '/var/lib/postgresql/15/main'), {
      kind: 'outside-file',
      file: '/etc/postgresql/15/main/postgresql.conf',
    });
    // Without pg_read_all_settings neither the file nor the data directory is visible.
    assert.deepEqual(originOf('configuration file', null, undefined), { kind: 'unseen-file' });
    assert.deepEqual(originOf('default', null, '/data'), { kind: 'in-copy' });
    assert.deepEqual(originOf('override', null, '/data'), { kind: 'in-copy' });
  });

  it("raises a hot standby's minimums to the primary's values, wherever they came from", () => {
    const source = [
      setting('max_wal_senders', '20', commandLine),
      setting('max_connections', '100', inCopy),
      setting('max_locks_per_transaction', '128', inCopy),
      setting('max_prepared_transactions', '0', inCopy),
      setting('max_worker_processes', '8', inCopy),
    ];
    const copied = new Map<string, string | undefined>([
      ['max_wal_senders', '10'],
      ['max_connections', '100'],
      // A copy edited since the source started (pending a restart) below the running value.
      ['max_locks_per_transaction', '64'],
      ['max_prepared_transactions', '0'],
      ['max_worker_processes', '16'],
    ]);
    assert.deepEqual(
      settingsToCarry(source, copied).map((c) => [c.name, c.value, c.belowPrimary]),
      [
        ['max_wal_senders', '20', true],
        ['max_locks_per_transaction', '128', true],
      ],
    );
    // The copy's configuration unreadable: the primary's values, all of them.
    assert.deepEqual(
      settingsToCarry(source, new Map()).map((c) => c.name),
      source.map((s) => s.name),
    );
  });

  it('carries what the source runs with from outside its data directory when the copy differs', () => {
    const source = [
      setting('max_connections', '120', commandLine),
      setting('work_mem', '7168', commandLine),
      setting('shared_buffers', '16384', commandLine),
      setting(
        'shared_preload_libraries',
        'pg_stat_statements',
        { kind: 'outside-file', file: '/etc/pg/extra.conf' },
        { vartype: 'string' },
      ),
      setting('datestyle', 'ISO, DMY', { kind: 'environment' }, { vartype: 'string', context: 'user' }),
      setting('wal_buffers', '512', { kind: 'unseen-file' }),
      setting('effective_cache_size', '524288', inCopy),
      setting('data_checksums', 'on', commandLine, { context: 'internal' }),
    ];
    const copied = new Map<string, string | undefined>([
      // The copy says 200, more than the source runs with: still the source's value, as it ran.
      ['max_connections', '200'],
      ['work_mem', '4096'],
      // The same in the copy: nothing to write.
      ['shared_buffers', '16384'],
      ['shared_preload_libraries', ''],
      ['datestyle', 'ISO, MDY'],
      ['wal_buffers', '512'],
      ['effective_cache_size', '4'],
    ]);
    const carried = settingsToCarry(source, copied);
    assert.deepEqual(
      carried.map((c) => [c.name, c.value, c.belowPrimary, c.printable]),
      [
        ['max_connections', '120', false, true],
        ['work_mem', '7168', false, true],
        ['shared_preload_libraries', 'pg_stat_statements', false, false],
        ['datestyle', 'ISO, DMY', false, false],
      ],
    );
    // What is asked of the copy: the hot standby's minimums and whatever came from outside it.
    assert.deepEqual(
      settingsToCompare(source).map((s) => s.name),
      ['max_connections', 'work_mem', 'shared_buffers', 'shared_preload_libraries', 'datestyle', 'wal_buffers'],
    );
  });

  it("never carries what this host or pgferry's standby decides: ports, sockets, paths, TLS, recovery", () => {
    const source = [
      'port',
      'listen_addresses',
      'unix_socket_directories',
      'data_directory',
      'hba_file',
      'ssl',
      'ssl_cert_file',
      'log_directory',
      'max_stack_depth',
      'primary_conninfo',
      'primary_slot_name',
      'hot_standby',
      'restore_command',
      'recovery_target_time',
    ].map((name) => setting(name, 'x', commandLine, { vartype: 'string' }));
    assert.deepEqual(settingsToCarry(source, new Map()), []);
    assert.deepEqual(settingsToCompare(source), []);
  });

  it('names the command line and the outside files in check, and what is not carried in its fix', () => {
    const facts = physicalFindingsFacts([
      setting('max_connections', '120', commandLine),
      setting('max_wal_senders', '20', commandLine),
      setting('work_mem', '7168', commandLine),
      setting('port', '5433', commandLine),
      setting('shared_preload_libraries', 'x', { kind: 'outside-file', file: '/etc/pg/extra.conf' }),
      setting('shared_buffers', '16384', inCopy),
    ]);
    const found = physicalFindings(facts).find((f) => f.id === 'source.settings-not-copied');
    assert.equal(found?.severity, 'warning');
    assert.equal(
      found?.message,
      "the source runs with settings its data directory does not hold: from the source's command line: max_connections, max_wal_senders, work_mem, port; from /etc/pg/extra.conf: shared_preload_libraries",
    );
    assert.match(found?.why ?? '', /refuses to start with max_connections, max_wal_senders below the primary's value/);
    assert.match(
      found?.fix ?? '',
      /writes max_connections, max_wal_senders, work_mem, shared_preload_libraries into the standby's postgresql\.auto\.conf/,
    );
    assert.match(found?.fix ?? '', /not carried, .*: port;/);
    assert.equal(
      physicalFindings(physicalFindingsFacts([setting('shared_buffers', '16384', inCopy)])).find(
        (f) => f.id === 'source.settings-not-copied',
      ),
      undefined,
    );
    const debian = physicalFindings({
      ...facts,
      source: {
        ...facts.source,
        settings: {
          settings: [],
          filesOutside: [{ setting: 'hba_file', path: '/etc/postgresql/15/main/pg_hba.conf' }],
          filesVisible: true,
        },
      },
    }).find((f) => f.id === 'source.hba-file');
    assert.equal(debian?.severity, 'warning');
    assert.match(debian?.fix ?? '', /copy \/etc\/postgresql\/15\/main\/pg_hba\.conf .* to \/data\/pg_hba\.conf/);
  });
});

/** Facts of a ready source whose settings are these. */
function physicalFindingsFacts(settings: SourceSetting[]): PhysicalFacts {
  return {
    source: {
      version: '15.18',
      major: 15,
      currentUser: 'postgres',
      walLevel: 'replica',
      maxWalSenders: 20,
      walSendersInUse: 0,
      maxReplicationSlots: 10,
      slotsInUse: 0,
      canReplicate: true,
      canFreeze: true,
      clusterBytes: 1e9,
      unsized: [],
      dataChecksums: false,
      slot: { exists: false, active: false },
      settings: { settings, filesOutside: [], filesVisible: true },
    },
    slot: 'pgferry_phys_standby',
    replicationConnection: { ok: true },
    programs: {
      pg_basebackup: { path: '/bin/pg_basebackup', version: '15.18', major: 15 },
      postgres: { path: '/bin/postgres', version: '15.18', major: 15 },
    },
    pgdata: { path: '/data', state: { kind: 'absent', freeBytes: 1e12 } },
    runningAsRoot: false,
  };
}

describe("physical: the server's own words when the standby does not start", () => {
  // As PostgreSQL 15 wrote them to the start log of a standby below the primary's max_connections.
  const log = [
    '2026-12-07 07:58:49.914 UTC [10475] LOG:  starting PostgreSQL 15.18 on x86_64-pc-linux-gnu, 64-bit',
    '2026-12-07 07:58:49.916 UTC [10478] LOG:  entering standby mode',
    '2026-12-07 07:58:49.916 UTC [10478] FATAL:  recovery aborted because of insufficient parameter settings',
    '2026-12-07 07:58:49.916 UTC [10478] DETAIL:  max_connections = 60 is a lower setting than on the primary server, where its value was 120.',
    '2026-12-07 07:58:49.916 UTC [10478] HINT:  You can restart the server after making the necessary configuration changes.',
    '2026-12-07 07:58:49.917 UTC [10475] LOG:  startup process (PID 10478) exited with exit code 1',
    '2026-12-07 07:58:49.918 UTC [10475] LOG:  database system is shut down',
    '',
  ].join('\n');
  it('reads the last FATAL with its DETAIL and HINT, whatever the line prefix', () => {
    const found = lastComplaint(log);
    assert.deepEqual(found, {
      severity: 'FATAL',
      message: 'recovery aborted because of insufficient parameter settings',
      detail: 'max_connections = 60 is a lower setting than on the primary server, where its value was 120.',
      hint: 'You can restart the server after making the necessary configuration changes.',
    });
    assert.equal(
      describeComplaint(found!),
      'FATAL: recovery aborted because of insufficient parameter settings; DETAIL: max_connections = 60 is a lower setting than on the primary server, where its value was 120.; HINT: You can restart the server after making the necessary configuration changes.',
    );
    assert.deepEqual(lastComplaint('FATAL:  could not create any TCP/IP sockets\nLOG:  database system is shut down\n'), {
      severity: 'FATAL',
      message: 'could not create any TCP/IP sockets',
      detail: undefined,
      hint: undefined,
    });
    assert.equal(lastComplaint('LOG:  all is well\n'), undefined);
  });
});
