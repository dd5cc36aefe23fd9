import type pg from 'pg';

/** How long a goodbye may take before the socket is simply closed. */
const CLOSE_WITHIN_MS = 2000;

/**
 * Closes a session without ever waiting on its peer for long: node-postgres's end() waits
 * for the server to close its side, which a silent (cut, stranded) connection never does.
 * Never rejects.
 */
export async function closeClient(client: pg.Client, withinMs = CLOSE_WITHIN_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      destroyClient(client);
      resolve();
    }, withinMs);
  });
  try {
    await Promise.race([client.end().catch(() => undefined), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Closes the socket at once: whatever the session awaits fails ("Connection terminated"), and
 * a transaction it had open rolls back on the server when the server notices.
 */
export function destroyClient(client: pg.Client): void {
  client.connection.stream.destroy();
}
