/**
 * A cut-over's request that sync record the rows it applies (state/recording.ts), against a
 * batch of sync's in flight on a real server: the batch updates pgferry.sync and then records
 * into pgferry.changed_rows. The request must never hold what such a batch waits for while it
 * waits on the batch. It did: it altered both tables in one transaction, and a batch between the
 * two deadlocked with it (seen as one cut-over in four failing under pgbench at full speed,
 * "sync cannot apply changes, so it cannot record them: deadlock detected").
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { endRecording, ensureSyncState, requestRecording } from '../../src/state/index.js';
import { startClusters, type Cluster } from '../harness/index.js';

let cluster: Cluster;
let db: string;

before(async () => {
  [cluster] = await startClusters([{ version: 17 }]);
  db = await cluster.createDatabase({ prefix: 'recording' });
  await cluster.withClient(db, async (client) => {
    await ensureSyncState(client);
    await client.query(
      `INSERT INTO pgferry.sync (name, slot_name, publication, phase) VALUES ('m', 'pgferry_m', 'pgferry_m', 'streaming')`,
    );
    // An earlier cut-over's request, under which the batch below records.
    await requestRecording(client, 'an-old-one', 60_000);
  });
});

after(async () => {
  await cluster?.stop();
});

async function session(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: cluster.url(db) });
  await client.connect();
  return client;
}

/** Until the backend waits on a lock (within 10 s). */
async function waitsOnALock(pid: number, otherwise: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { rows } = await cluster.sql(db, `SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1`, [pid]);
    if ((rows[0] as { wait_event_type: string | null } | undefined)?.wait_event_type === 'Lock') return;
    assert.ok(Date.now() < deadline, otherwise);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('a recording request beside a batch in flight', () => {
  test('waits for the batch without holding what the batch needs next: both finish, no deadlock', async () => {
    const batch = await session();
    const cutover = await session();
    try {
      await batch.query('BEGIN');
      await batch.query(`UPDATE pgferry.sync SET applied_rows = applied_rows + 1`);
      const cutoverPid = (await cutover.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const requested = requestRecording(cutover, 'the-new-one', 60_000).then(
        () => 'done',
        (error: unknown) => `failed: ${String(error)}`,
      );
      // The request now waits on the batch.
      await waitsOnALock(cutoverPid, 'the request never waited on the batch');
      // The batch records what it applied (under an earlier request), then commits.
      const recorded = await batch
        .query(
          `INSERT INTO pgferry.changed_rows (recording_id, table_name, kind, columns, key, lsn) VALUES ('an-old-one', 't', 'key', '["id"]', '["1"]', '0/1')`,
        )
        .then(
          () => 'recorded',
          (error: unknown) => `failed: ${String(error)}`,
        );
      assert.equal(recorded, 'recorded');
      await batch.query('COMMIT');
      assert.equal(await requested, 'done');
      const { rows } = await cluster.sql(
        db,
        `SELECT recording_id FROM pgferry.sync UNION ALL SELECT recording_id FROM pgferry.changed_rows`,
      );
      assert.deepEqual(rows, [{ recording_id: 'the-new-one' }], 'the new request stands, and the earlier one’s rows are gone');
    } finally {
      await batch.end().catch(() => undefined);
      await cutover.end().catch(() => undefined);
    }
  });

  test('the request ended beside a batch that records under it: both finish, no deadlock', async () => {
    const id = 'ending';
    await cluster.withClient(db, async (client) => {
      await requestRecording(client, id, 60_000);
      await client.query(
        `INSERT INTO pgferry.changed_rows (recording_id, table_name, kind, columns, key, lsn) VALUES ($1, 't', 'key', '["id"]', '["7"]', '0/1')`,
        [id],
      );
    });
    const batch = await session();
    const cutover = await session();
    try {
      await batch.query('BEGIN');
      await batch.query(`UPDATE pgferry.sync SET applied_rows = applied_rows + 1`);
      const cutoverPid = (await cutover.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const ended = endRecording(cutover, id).then(
        () => 'done',
        (error: unknown) => `failed: ${String(error)}`,
      );
      await waitsOnALock(cutoverPid, 'ending the request never waited on the batch');
      // The batch records the same key again (it changed again), as sync's recordChanges does, then commits.
      const recorded = await batch
        .query(
          `INSERT INTO pgferry.changed_rows AS c (recording_id, table_name, kind, columns, key, lsn)
           SELECT $1, 't', 'key', '["id"]', '["7"]', '0/2' WHERE EXISTS (SELECT 1 FROM pgferry.sync WHERE recording_id = $1)
           ON CONFLICT (recording_id, table_name, kind, pg_catalog.md5(columns), pg_catalog.md5(key)) DO UPDATE SET lsn = EXCLUDED.lsn`,
          [id],
        )
        .then(
          () => 'recorded',
          (error: unknown) => `failed: ${String(error)}`,
        );
      await batch.query(recorded === 'recorded' ? 'COMMIT' : 'ROLLBACK');
      assert.deepEqual([recorded, await ended], ['recorded', 'done']);
      const { rows } = await cluster.sql(
        db,
        `SELECT recording_id FROM pgferry.sync WHERE recording_id IS NOT NULL UNION ALL SELECT recording_id FROM pgferry.changed_rows`,
      );
      assert.deepEqual(rows, [], 'the request and every row recorded under it are gone');
    } finally {
      await batch.end().catch(() => undefined);
      await cutover.end().catch(() => undefined);
    }
  });
});
