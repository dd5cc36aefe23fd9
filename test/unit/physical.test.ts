import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConnectionSpec } from '../../src/config/index.js';
import { lastProgress } from '../../src/physical/base-backup.js';
import { majorOfVersionLine } from '../../src/physical/binaries.js';
import { physicalFindings, type PhysicalFacts } from '../../src/physical/check-rules.js';
import { passwordFileLine, quoteConfigValue, quoteConninfoValue, replicationConnectionString } from '../../src/physical/conninfo.js';
import { standbyFiles } from '../../src/physical/standby-config.js';

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
  const settings = { primaryConninfo: "host=h user='u'", slot: 'pgferry_phys_standby', port: 5433 };
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
