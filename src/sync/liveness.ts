import type { InboundTimings } from '../replication/index.js';

/**
 * When a peer that says nothing is taken for gone. A connection cut by a firewall or a NAT
 * that forgot it gives no error: reads wait forever. TCP keepalives find some of these (the
 * peer's kernel stops answering); a peer whose kernel still answers but whose process or path
 * is stuck needs these rules. Pure decisions, tested on their own; sync applies them (the
 * walsender's side is replication/liveness.ts).
 */

export interface LivenessTimings extends InboundTimings {
  /** A monitor round (a few small queries on each side) not done in this long: a side is lost. */
  readonly monitorDeadlineMs: number;
  /** The apply session waiting this long on an answer its server no longer works on: lost. */
  readonly applyStallMs: number;
}

/** The least peer timeout: below it, a busy server's answers to small queries would pass for silence. */
export const MIN_PEER_TIMEOUT_MS = 5_000;

/**
 * From the peer timeout of each side (--peer-timeout). A walsender answers a status update that
 * asks for a reply at once (asked after a quarter of the timeout of silence), so a whole timeout
 * of silence is no walsender at work: native logical replication allows as much
 * (wal_receiver_timeout, 60 s by default). A monitor round (a few small queries on each side) or
 * an apply answer the target owes gets as long on its side.
 */
export function livenessTimings(sourcePeerTimeoutMs: number, targetPeerTimeoutMs: number): LivenessTimings {
  const source = Math.max(MIN_PEER_TIMEOUT_MS, sourcePeerTimeoutMs);
  const target = Math.max(MIN_PEER_TIMEOUT_MS, targetPeerTimeoutMs);
  return {
    silenceLimitMs: source,
    askAfterMs: Math.max(1000, Math.floor(source / 4)),
    monitorDeadlineMs: Math.max(source, target),
    applyStallMs: target,
  };
}

/** The apply session's backend as the target's pg_stat_activity shows it; undefined when it is gone. */
export interface ApplyBackend {
  readonly state: string | null;
  /** Since its state last changed. */
  readonly sinceMs: number;
}

/**
 * The apply has awaited an answer for `busyForMs`; its backend says it waits for the client
 * (idle, or idle in a transaction) for `backend.sinceMs`, or it is gone: the connection between
 * them is dead. A backend that works (active, waiting on a lock) is not judged here:
 * lock_timeout bounds that wait.
 */
export function applyConnectionLost(
  busyForMs: number | undefined,
  backend: ApplyBackend | undefined,
  timings: LivenessTimings,
): string | undefined {
  if (busyForMs === undefined || busyForMs < timings.applyStallMs) return undefined;
  if (backend === undefined)
    return `the apply session's backend on the target is gone, while pgferry has waited ${Math.round(busyForMs / 1000)} s for its answer`;
  const waitingForClient =
    backend.state === 'idle' || backend.state === 'idle in transaction' || backend.state === 'idle in transaction (aborted)';
  if (waitingForClient && backend.sinceMs >= timings.applyStallMs) {
    return `the apply session's backend on the target has waited ${Math.round(backend.sinceMs / 1000)} s for pgferry, which has waited ${Math.round(busyForMs / 1000)} s for it: the connection between them is dead`;
  }
  return undefined;
}
