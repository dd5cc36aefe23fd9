/**
 * Log sequence numbers are 64-bit positions in the WAL. Inside pgferry they are `bigint`;
 * the `X/Y` text form exists only where a server or a person reads them.
 */
export type Lsn = bigint;

export function parseLsn(text: string): Lsn {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!match) throw new Error(`"${text}" is not a WAL position (expected X/Y in hexadecimal)`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** PostgreSQL timestamps on the wire count microseconds from 2000-01-01 UTC. */
const POSTGRES_EPOCH_MS = Date.UTC(2000, 0, 1);

export function postgresTimeToDate(microseconds: bigint): Date {
  return new Date(POSTGRES_EPOCH_MS + Number(microseconds / 1000n));
}

export function dateToPostgresTime(date: Date): bigint {
  return BigInt(date.getTime() - POSTGRES_EPOCH_MS) * 1000n;
}
