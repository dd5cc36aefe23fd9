import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { Cluster, UrlOptions } from './cluster.js';

/**
 * A TCP proxy in this process, placed between pgferry and one PostgreSQL server, that can
 * break the connections through it the ways real networks do: a reset, a silent cut that
 * heals, and a flow forgotten by a NAT or firewall.
 */
export interface FaultProxy {
  readonly host: string;
  readonly port: number;
  /** Connections accepted since the proxy started, and those of them still open. */
  readonly connections: { readonly accepted: number; readonly open: number };
  /** `cluster.url(database, options)` pointed at the proxy; `cluster` must be the proxy's target. */
  url(cluster: Cluster, database?: string, options?: Omit<UrlOptions, 'host' | 'port'>): string;
  /** Ends every open connection, stranded ones included, with a TCP RST to both sides; returns how many. */
  reset(): number;
  /**
   * A silent cut: nothing is forwarded in either direction and nothing is closed, for open
   * connections and for new ones (accepted, then silent), until `heal()` or for `ms`.
   * Bytes sent meanwhile are held, not dropped, and delivered in order once healed.
   */
  cut(ms?: number): void;
  /** The connections open now go silent for good and are never closed; new ones work. Returns how many. */
  strand(): number;
  /** Ends a cut. Stranded connections stay stranded. */
  heal(): void;
  /** Stops listening and destroys every socket and timer; safe to call twice. */
  close(): Promise<void>;
}

const CLOSE_TIMEOUT_MS = 5_000;

/**
 * What one side still has to give the other. A silent link queues these and replays them in
 * order on healing: the PostgreSQL protocol has no resynchronisation, so a dropped byte would
 * leave both ends misreading each other after the cut; held-then-delivered is what TCP itself
 * does across a partition that heals before it gives up. A FIN or RST that arrives during the
 * cut is queued the same way: the far side must not learn of it through a partition.
 */
type Pending = Buffer | 'end' | 'reset';

/** One direction of a link: bytes read from `from` are written to `to`. */
interface Direction {
  readonly from: Socket;
  readonly to: Socket;
  readonly queue: Pending[];
  /** `to` refused more (its buffer is full): `from` stays paused until 'drain'. */
  waitingForDrain: boolean;
}

type LinkState = 'flowing' | 'cut' | 'stranded';

/** A client connection and the proxy's own connection to the server. */
class Link {
  state: LinkState;
  private readonly directions: readonly [Direction, Direction];

  constructor(
    readonly client: Socket,
    readonly server: Socket,
    state: LinkState,
    private readonly onClosed: (link: Link) => void,
  ) {
    this.state = state;
    this.directions = [
      { from: client, to: server, queue: [], waitingForDrain: false },
      { from: server, to: client, queue: [], waitingForDrain: false },
    ];
    for (const direction of this.directions) this.wire(direction);
    let closed = 0;
    for (const socket of [client, server]) {
      socket.once('close', () => {
        closed += 1;
        if (closed === 2) this.onClosed(this);
      });
    }
    this.apply();
  }

  /** Moves the link to `state` and makes the sockets follow: paused when silent, queues replayed when flowing. */
  setState(state: LinkState): void {
    if (this.state === 'stranded') return;
    this.state = state;
    this.apply();
  }

  reset(): void {
    resetSocket(this.client);
    resetSocket(this.server);
  }

  destroy(): void {
    this.client.destroy();
    this.server.destroy();
  }

  private wire(direction: Direction): void {
    const { from, to } = direction;
    from.on('data', (chunk: Buffer) => this.deliver(direction, chunk));
    // With allowHalfOpen a FIN is only an event: it is passed on like data, so it can be held.
    from.on('end', () => this.deliver(direction, 'end'));
    // A reset (or any other failure) of one side resets the other. The error itself is
    // expected under fault injection; listening is what keeps it from being thrown.
    from.on('error', () => this.deliver(direction, 'reset'));
    // Closed without an error after a FIN we already passed on: nothing more to do. Closed
    // without a FIN (destroyed by us, say) and still open on the far side: end that too.
    from.on('close', (hadError: boolean) => {
      if (!hadError && !from.readableEnded) this.deliver(direction, 'end');
    });
    to.on('drain', () => {
      direction.waitingForDrain = false;
      this.apply();
    });
  }

  private deliver(direction: Direction, item: Pending): void {
    direction.queue.push(item);
    this.apply();
  }

  private apply(): void {
    for (const direction of this.directions) {
      if (this.state === 'flowing') this.flush(direction);
      const { from } = direction;
      if (this.state !== 'flowing' || direction.waitingForDrain) from.pause();
      else if (!from.destroyed) from.resume();
    }
  }

  private flush(direction: Direction): void {
    const { to, queue } = direction;
    while (queue.length > 0 && !direction.waitingForDrain) {
      const item = queue.shift()!;
      if (to.destroyed) continue;
      if (item === 'end') to.end();
      else if (item === 'reset') resetSocket(to);
      else if (!to.write(item)) direction.waitingForDrain = true;
    }
  }
}

/** A TCP RST; a socket still connecting has sent nothing yet, so it is simply dropped. */
function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.connecting) socket.destroy();
  else socket.resetAndDestroy();
}

class TcpFaultProxy implements FaultProxy {
  readonly host: string;
  readonly port: number;
  private readonly links = new Set<Link>();
  private accepted = 0;
  private cutting = false;
  private healTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly server: Server,
    private readonly target: { readonly host: string; readonly port: number },
  ) {
    const address = server.address();
    if (typeof address !== 'object' || address === null) throw new Error('the fault proxy is not listening');
    this.host = address.address;
    this.port = address.port;
    server.on('connection', (client) => this.accept(client));
  }

  get connections(): { accepted: number; open: number } {
    return { accepted: this.accepted, open: this.links.size };
  }

  url(cluster: Cluster, database = 'postgres', options: Omit<UrlOptions, 'host' | 'port'> = {}): string {
    if (cluster.host !== this.target.host || cluster.port !== this.target.port) {
      throw new Error(`this proxy forwards to ${this.target.host}:${this.target.port}, not to ${cluster.host}:${cluster.port}`);
    }
    return cluster.url(database, { ...options, host: this.host, port: this.port });
  }

  reset(): number {
    const count = this.links.size;
    for (const link of this.links) link.reset();
    return count;
  }

  cut(ms?: number): void {
    this.clearHealTimer();
    this.cutting = true;
    for (const link of this.links) link.setState('cut');
    if (ms !== undefined) this.healTimer = setTimeout(() => this.heal(), ms);
  }

  strand(): number {
    let count = 0;
    for (const link of this.links) {
      if (link.state === 'stranded') continue;
      link.setState('stranded');
      count += 1;
    }
    return count;
  }

  heal(): void {
    this.clearHealTimer();
    this.cutting = false;
    for (const link of this.links) link.setState('flowing');
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.clearHealTimer();
      for (const link of this.links) link.destroy();
      // Every socket is destroyed already, so this is quick; the deadline is for a surprise.
      const deadline = setTimeout(resolve, CLOSE_TIMEOUT_MS);
      this.server.close(() => {
        clearTimeout(deadline);
        resolve();
      });
    });
    return this.closing;
  }

  private accept(client: Socket): void {
    if (this.closing) {
      client.destroy();
      return;
    }
    this.accepted += 1;
    // Connected even during a cut: the server sees a client that says nothing yet, which is
    // what a SYN that got through before the partition looks like.
    const server = createConnection({ host: this.target.host, port: this.target.port, allowHalfOpen: true });
    for (const socket of [client, server]) socket.setNoDelay(true);
    this.links.add(new Link(client, server, this.cutting ? 'cut' : 'flowing', (link) => this.links.delete(link)));
  }

  private clearHealTimer(): void {
    if (this.healTimer !== undefined) clearTimeout(this.healTimer);
    this.healTimer = undefined;
  }
}

/** Listens on 127.0.0.1, on a port of the system's choosing, and forwards to `target`. */
export function startProxy(target: { readonly host: string; readonly port: number }): Promise<FaultProxy> {
  return new Promise((resolve, reject) => {
    // allowHalfOpen: a FIN from one side must not make Node end the other on its own; the
    // link decides when to pass it on (not during a cut, never when stranded).
    const server = createServer({ allowHalfOpen: true });
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve(new TcpFaultProxy(server, target));
    });
  });
}
