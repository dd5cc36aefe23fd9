/**
 * The copy streams: pgferry's memory stays bounded whatever the row size. A table of 50 MB
 * values is cloned by the real CLI while its resident set is sampled from /proc.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startClusters, type Cluster } from '../harness/index.js';

const BIN = fileURLToPath(new URL('../../../bin/pgferry.js', import.meta.url));
const LIMIT_MB = 256;

let source: Cluster;
let target: Cluster;

before(async () => {
  [source, target] = await startClusters([{ version: 17 }, { version: 17 }]);
});

after(async () => {
  await Promise.all([source?.stop(), target?.stop()]);
});

function residentMb(pid: number): number | undefined {
  try {
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}

test(`cloning rows of 50 MB values stays under ${LIMIT_MB} MB resident`, async (t) => {
  const sourceDb = await source.createDatabase();
  const targetDb = await target.createDatabase();
  // EXTERNAL storage: no compression, so each value really is 50 MB on disk and on the wire.
  await source.sql(
    sourceDb,
    `CREATE TABLE blobs (id int PRIMARY KEY, payload bytea, note text); ALTER TABLE blobs ALTER COLUMN payload SET STORAGE EXTERNAL`,
  );
  for (let id = 1; id <= 4; id++) {
    await source.sql(
      sourceDb,
      `INSERT INTO blobs VALUES (${id}, decode(repeat(lpad(to_hex(${id}), 2, '0') || 'ff', 26214400), 'hex'), repeat('x', 1000))`,
    );
  }
  const { rows } = await source.sql(sourceDb, `SELECT min(length(payload)) AS smallest, count(*)::int AS n FROM blobs`);
  assert.ok(Number(rows[0].smallest) >= 50 * 1024 * 1024, 'the values are 50 MB each');

  const child = spawn(process.execPath, [BIN, 'clone', '--jobs', '2', '--source', source.url(sourceDb), '--target', target.url(targetDb)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdout.resume();
  let peak = 0;
  const sampler = setInterval(() => {
    const mb = residentMb(child.pid!);
    if (mb !== undefined) peak = Math.max(peak, mb);
  }, 20);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearInterval(sampler);
  assert.equal(code, 0, stderr);
  assert.ok(peak > 0, 'the process was sampled');
  t.diagnostic(`peak resident memory of pgferry clone: ${peak.toFixed(0)} MB`);
  assert.ok(peak < LIMIT_MB, `peak resident memory ${peak.toFixed(0)} MB`);

  const check = `SELECT count(*)::int AS n, md5(string_agg(md5(payload), ',' ORDER BY id)) AS digest FROM blobs`;
  const [a, b] = await Promise.all([source.sql(sourceDb, check), target.sql(targetDb, check)]);
  assert.deepEqual(b.rows[0], a.rows[0]);
});
