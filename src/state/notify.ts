import type pg from 'pg';

/** A running sync listens here (sync/requests.ts), so a cut-over's request reaches it at once rather than at its next poll. */
export const REQUESTS_CHANNEL = 'pgferry_sync_requests';

/** Wakes a running sync to read its requests now (call it once the request is committed). */
export async function notifySync(client: pg.Client): Promise<void> {
  await client.query(`SELECT pg_notify($1, '')`, [REQUESTS_CHANNEL]);
}
