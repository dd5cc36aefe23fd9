/**
 * The harness's own promises: servers run unprivileged, each test gets its own database,
 * and no server outlives the test process that started it, however that process ends.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  debianInstallation,
  isAlive,
  spawnPgferry,
  startCluster,
  sweepAbandonedClusters,
  unprivilegedUser,
  useClusterPair,
  waitUntilStreaming,
  type Cluster,
  type PgferryProcess,
} from '../harness/index.js';

const HARNESS = fileURLToPath(new URL('../harness/index.js', import.meta.url));

const isRunning = isAlive;

function postmasterPid(dataDirectory: string): number {
  return Number(readFileSync(`${dataDirectory}/postmaster.pid`, 'utf8').split('\n')[0]);
}

async function waitUntil(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`timed out waiting until ${what}`);
}

/**
 * Starts a cluster in a separate Node process that prints its data directory and then ends
 * the way `ending` says; returns the directory and the server's pid.
 */
function clusterInChild(ending: 'throw' | 'hang'): Promise<{ child: ReturnType<typeof spawn>; directory: string; pid: number }> {
  const script = `
    const { startCluster } = await import(${JSON.stringify(HARNESS)});
    const cluster = await startCluster({ version: 13 });
    console.log(cluster.directory);
    ${ending === 'throw' ? `setTimeout(() => { throw new Error('a test failed badly'); }, 200);` : 'setInterval(() => {}, 1000);'}
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr.on('data', (chunk) => (err += chunk));
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) {
        resolve({ child, directory: line, pid: postmasterPid(`${line}/data`) });
      }
    });
    child.on('exit', (code) => {
      if (!out.includes('\n')) reject(new Error(`child exited ${code} before starting its cluster: ${err}`));
    });
  });
}

describe('test harness', () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster({ version: 16, settings: { wal_level: 'replica' } });
  });
  after(async () => {
    await cluster?.stop();
  });

  test('applies the settings a test asks for, and logical by default elsewhere', async () => {
    const { rows } = await cluster.sql(
      'postgres',
      `SELECT current_setting('wal_level') AS wal_level, current_setting('server_version_num') AS v`,
    );
    assert.equal(rows[0].wal_level, 'replica');
    assert.match(rows[0].v, /^16/);
  });

  test('runs PostgreSQL as an unprivileged user when we are root', async () => {
    const pid = postmasterPid(`${cluster.directory}/data`);
    const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
    const runAs = unprivilegedUser();
    if (runAs) {
      assert.equal(uid, runAs.uid);
      assert.notEqual(uid, 0);
    } else {
      assert.equal(uid, process.getuid!());
    }
  });

  test('each call gives a fresh, empty database', async () => {
    const a = await cluster.createDatabase();
    const b = await cluster.createDatabase();
    assert.notEqual(a, b);
    await cluster.sql(a, 'CREATE TABLE t (id int)');
    const { rows } = await cluster.sql(b, `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`);
    assert.equal(rows[0].n, 0);
  });

  test('a test process that dies of an uncaught error takes its server with it', async () => {
    const { child, directory, pid } = await clusterInChild('throw');
    await new Promise((resolve) => child.on('exit', resolve));
    await waitUntil(() => !isRunning(pid), `server ${pid} is gone`);
    assert.ok(!existsSync(directory), 'its directory is removed');
  });

  test('a server whose test process was killed outright is swept by the next harness', async () => {
    const { child, directory, pid } = await clusterInChild('hang');
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('exit', resolve));
    assert.ok(isRunning(pid), 'SIGKILL leaves the server running: nothing could clean up');
    sweepAbandonedClusters();
    await waitUntil(() => !isRunning(pid), `server ${pid} is gone`);
    assert.ok(!existsSync(directory), 'its directory is removed');
  });
});

// A sync a failing test never stopped keeps retrying against servers that are gone, as it
// should; the harness kills it as the describe block's servers stop, so the file still ends.
let stray: PgferryProcess | undefined;

describe("Debian's servers (harness)", () => {
  test('a missing package fails at once, naming it and how to install it; npm builds are never asked for extensions', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pgferry-fake-debian-'));
    try {
      assert.throws(
        () => debianInstallation(15, ['postgis'], root),
        /initdb, pg_ctl, postgres missing in .*usr\/lib\/postgresql\/15\/bin; extension postgis not installed\): install postgresql-15 postgresql-15-postgis-3 \(as root: DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 postgresql-15-postgis-3; \.ci\/run/,
      );
      const binDir = join(root, 'usr/lib/postgresql/15/bin');
      mkdirSync(binDir, { recursive: true });
      for (const program of ['initdb', 'pg_ctl', 'postgres']) writeFileSync(join(binDir, program), '');
      mkdirSync(join(root, 'usr/share/postgresql/15/extension'), { recursive: true });
      writeFileSync(join(root, 'usr/share/postgresql/15/extension/postgis.control'), '');
      assert.throws(
        () => debianInstallation(15, ['postgis', 'pg_partman'], root),
        /\(extension pg_partman not installed\): install postgresql-15-partman /,
      );
      assert.deepEqual(debianInstallation(15, ['postgis'], root), { major: 15, distribution: 'debian', binDir });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
    await assert.rejects(startCluster({ version: 15, extensions: ['postgis'] }), /come with Debian's server only/);
  });
});

describe('a pgferry process a test left running (harness)', () => {
  const pair = useClusterPair(17, 18);

  test('is started and deliberately not stopped', async () => {
    const db = await pair.source.createDatabase({ prefix: 'stray' });
    await pair.target.sql('postgres', `CREATE DATABASE ${db}`);
    await pair.source.sql(db, `CREATE TABLE t (id int PRIMARY KEY)`);
    stray = spawnPgferry(['sync', '--source', pair.source.url(db), '--target', pair.target.url(db)]);
    await waitUntilStreaming(pair.target, db, stray);
  });
});

describe('after that block (harness)', () => {
  // Without the harness's kill this would wait for ever: the deadline makes it fail instead.
  test('the stray sync was killed when its servers stopped', { timeout: 30_000 }, async () => {
    assert.ok(stray, 'the block before started one');
    assert.equal(await stray.exited(), 128);
    assert.equal(stray.child.signalCode, 'SIGKILL');
  });
});
