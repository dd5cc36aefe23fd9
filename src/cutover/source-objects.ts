import type pg from 'pg';
import { captureNames, removeCapture } from '../ddl/index.js';
import { messageOf, PgferryError, type Side } from '../errors.js';
import type { MigrationNames } from '../sync/index.js';
import { quoteIdent } from '../plumbing/index.js';

/**
 * What a migration keeps on the server it streams from: its replication slot (which holds WAL
 * until dropped), its publication and its schema-change capture. Dropped by cleanup, and by a
 * cut-over that hands the stream to the other direction. Only the slot of this database is
 * dropped: on a server holding both sides, the other database's slot of the same name is the
 * other direction's.
 */
export async function dropSourceObjects(client: pg.Client, side: Side, names: MigrationNames): Promise<string[]> {
  const { name, slot, publication } = names;
  const removed: string[] = [];
  const { rows } = await client.query<{ active_pid: number | null }>(
    `SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()`,
    [slot],
  );
  const found = rows[0];
  if (found) {
    if (found.active_pid !== null) {
      throw new PgferryError(
        'slot-taken',
        `${side}: replication slot ${slot} is in use by pid ${found.active_pid}: pgferry sync is still running`,
        {
          side,
          fix: 'stop pgferry sync (Ctrl-C, or let pgferry cutover stop it) and run cleanup again',
        },
      );
    }
    try {
      await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
    } catch (error) {
      throw new PgferryError('query', `${side}: cannot drop replication slot ${slot}: ${messageOf(error)}`, { side, cause: error });
    }
    removed.push(`${side}: dropped replication slot ${slot}`);
  }
  const publications = await client.query<{ present: boolean }>(
    `SELECT EXISTS (SELECT FROM pg_publication WHERE pubname = $1) AS present`,
    [publication],
  );
  if (publications.rows[0]?.present) {
    await client.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(publication)}`);
    removed.push(`${side}: dropped publication ${publication}`);
  }
  if (await removeCapture(client, name))
    removed.push(`${side}: dropped the schema-change capture (event triggers ${captureNames(name).endTrigger}, …)`);
  return removed;
}
