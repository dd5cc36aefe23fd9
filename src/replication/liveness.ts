/**
 * When a walsender that says nothing is taken for gone. A replication connection cut by a
 * firewall, or a NAT that forgot it, gives no error: the read waits forever. A live walsender
 * answers a status update that asks for a reply at once, and sends keepalives by itself within
 * its wal_sender_timeout; silence well past that is no walsender at work.
 */
export interface InboundTimings {
  /** Nothing heard for this long (while reading): the stream is lost. */
  readonly silenceLimitMs: number;
  /** Nothing heard for this long: status updates ask the walsender to answer at once. */
  readonly askAfterMs: number;
}

export type InboundVerdict = 'fine' | 'ask' | 'lost';

/** What to make of `silentForMs` without a message; a paused stream reads nothing on purpose. */
export function evaluateInbound(silentForMs: number, paused: boolean, timings: InboundTimings): InboundVerdict {
  if (paused) return 'fine';
  if (silentForMs >= timings.silenceLimitMs) return 'lost';
  if (silentForMs >= timings.askAfterMs) return 'ask';
  return 'fine';
}
