import assert from 'node:assert/strict';
import { spawnPgferry, type PgferryProcess } from './cli.js';
import type { Cluster } from './cluster.js';
import { WRITER_SCHEMA_SQL } from './writer.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits until a `pgferry sync` started with spawnPgferry streams: the target records phase
 * 'streaming' and a heartbeat with a measured lag. Fails with sync's output if it exits or takes too long.
 */
export async function waitUntilStreaming(target: Cluster, db: string, sync: PgferryProcess, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ready = await target
      // Streaming, and its monitor has measured the lag once (sync marks the start of each run
      // with a heartbeat before it knows the lag: a cut-over then waits for the measurement).
      .sql(db, `SELECT phase = 'streaming' AND heartbeat_at IS NOT NULL AND lag_seconds IS NOT NULL AS ok FROM pgferry.sync`)
      // Before sync has created its state there is no table to read yet.
      .then((r) => (r.rows[0] as { ok: boolean } | undefined)?.ok === true)
      .catch(() => false);
    if (ready) return;
    if (sync.child.exitCode !== null) throw new Error(`sync exited early:\n${sync.output()}`);
    if (Date.now() > deadline) throw new Error(`sync did not reach streaming within ${timeoutMs / 1000} s:\n${sync.output()}`);
    await sleep(200);
  }
}

/** SIGTERM, and the exit within 30 s (the promise of invariant 9); returns how long it took. */
export async function stopWithin30s(sync: PgferryProcess): Promise<number> {
  const started = Date.now();
  sync.child.kill('SIGTERM');
  const code = await Promise.race([sync.exited(), sleep(35_000).then(() => 'hung' as const)]);
  if (code === 'hung') {
    sync.child.kill('SIGKILL');
    assert.fail(`sync did not exit within 30 s of SIGTERM:\n${sync.output().slice(-3000)}`);
  }
  return Date.now() - started;
}

/** Stops a spawned sync the way an operator does (SIGTERM) and waits for it to exit. */
export async function stopSync(sync: PgferryProcess): Promise<void> {
  if (sync.child.exitCode === null) sync.child.kill('SIGTERM');
  await sync.exited();
}

/**
 * A source database with the writer's tables and `seed` run in it, and an empty target database
 * of the same name: before any pgferry command. `args` are the connection flags.
 */
export async function writerDatabases(
  source: Cluster,
  target: Cluster,
  prefix: string,
  seed: string,
): Promise<{ db: string; args: string[] }> {
  const db = await source.createDatabase({ prefix });
  await target.sql('postgres', `CREATE DATABASE ${db}`);
  await source.sql(db, WRITER_SCHEMA_SQL);
  await source.sql(db, seed);
  return { db, args: ['--source', source.url(db), '--target', target.url(db)] };
}

/**
 * A source database with the writer's tables and `seed` run in it, an empty target database of
 * the same name, and `pgferry sync` streaming between them: where the cut-over tests begin.
 * `args` are the connection flags, for the cut-over to reuse.
 */
export async function migrationUnderWay(
  source: Cluster,
  target: Cluster,
  prefix: string,
  seed: string,
): Promise<{ db: string; sync: PgferryProcess; args: string[] }> {
  const { db, args } = await writerDatabases(source, target, prefix, seed);
  const sync = spawnPgferry(['sync', ...args]);
  await waitUntilStreaming(target, db, sync);
  return { db, sync, args };
}
