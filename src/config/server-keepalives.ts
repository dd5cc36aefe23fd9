/**
 * The server's own TCP keepalives for pgferry's sessions (its tcp_keepalives_* settings, sent in
 * the start-up packet). A client that vanished without a word (a crash of the machine, a NAT or
 * firewall that forgot the flow) leaves its backend waiting for it, holding its transaction's
 * locks or its replication slot, until the server's probes go unanswered: two hours and more
 * with the system's defaults. With these the server gives up on a silent client within the
 * peer timeout, even when nothing of pgferry survives to end the backend itself. Every server
 * since 10 knows them and lets any role set them; over a Unix socket it accepts and ignores them.
 */
export function serverKeepalives(peerTimeoutMs: number): Readonly<Record<string, string>> {
  const seconds = Math.max(4, Math.ceil(peerTimeoutMs / 1000));
  // Three probes in the second half of the timeout, after silence in the first: gone within it.
  const count = 3;
  const interval = Math.max(1, Math.floor(seconds / (2 * count)));
  const idle = seconds - count * interval;
  return {
    tcp_keepalives_idle: String(idle),
    tcp_keepalives_interval: String(interval),
    tcp_keepalives_count: String(count),
  };
}
