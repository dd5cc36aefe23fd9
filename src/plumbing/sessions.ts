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

/**
 * Opens several sessions at once (each costs a round trip or two of authentication, and none
 * needs another) and gives them back in the order asked, typed one by one. If any fails, those
 * that opened are closed with `close` and the failure of the first to fail in that order is
 * thrown: a caller has either all of them or none to close.
 */
export async function openAll<T extends readonly unknown[] | []>(
  opening: T,
  close: (opened: Awaited<T[number]>) => Promise<void>,
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const each: ReadonlyArray<T[number]> = opening;
  const outcomes = await Promise.allSettled(each);
  const failed = outcomes.find((o) => o.status === 'rejected');
  if (failed === undefined) return Promise.all(opening);
  await Promise.all(outcomes.map((o) => (o.status === 'fulfilled' ? close(o.value) : undefined)));
  throw failed.reason;
}
