import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type pg from 'pg';
import { connect, type ConnectionSpec } from '../config/index.js';
import { closeClient } from '../plumbing/index.js';
import { messageOf, usageError } from '../errors.js';
import type { Logger } from '../log/index.js';
import type { MigrationMetrics } from './metrics.js';
import { STATUS_PAGE } from './page.js';
import { INSTANCE_PAGE } from './instance-page.js';
import type { InstanceMetrics } from './instance-metrics.js';
import { readStatusReport, type StatusReport } from './status-report.js';

/** Where `--listen` binds: a bare port means 127.0.0.1, so nothing is exposed unless asked. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** `--listen PORT`, `--listen HOST:PORT` or `--listen [V6]:PORT`. */
export function parseListen(text: string): ListenAddress {
  const match = /^(?:(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/.exec(text.trim());
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) {
    throw usageError(
      `--listen "${text}" is not an address to listen on`,
      'give a port (9187, bound to 127.0.0.1) or HOST:PORT (0.0.0.0:9187 to be reached from other machines)',
    );
  }
  return { host: match[1]?.replace(/^\[|\]$/g, '') ?? '127.0.0.1', port };
}

/**
 * The status server of a running `clone`, `sync` or `migrate`: `/metrics` (Prometheus text),
 * `/status.json` (what `status --json` prints, read from the target on each request), `/lag.json`
 * (the last hour of lag and the figures only this process knows) and `/`, a page that draws
 * them and refreshes itself. It serves no secret: the target's state holds none, and the
 * connection it reads with is never shown.
 */
export class StatusServer {
  private constructor(
    private readonly server: Server,
    private readonly readers: readonly TargetReader[],
    readonly address: ListenAddress,
  ) {}

  static async listen(at: ListenAddress, target: ConnectionSpec, metrics: MigrationMetrics, log: Logger): Promise<StatusServer> {
    const reader = new TargetReader(target);
    return StatusServer.serve(at, [reader], (request, response) => route(request, response, reader, metrics), log);
  }

  /**
   * The status server of `sync --all-databases`: `/` lists every database, `/status.json` holds
   * each one's status, `/metrics` every database's series with a `database` label, and
   * `/database/<name>/` is the page of one database (the single-database page, its reads relative).
   */
  static async listenAll(
    at: ListenAddress,
    targets: ReadonlyMap<string, ConnectionSpec>,
    metrics: InstanceMetrics,
    log: Logger,
  ): Promise<StatusServer> {
    const readers = new Map([...targets].map(([database, target]) => [database, new TargetReader(target)]));
    return StatusServer.serve(at, [...readers.values()], (request, response) => routeInstance(request, response, readers, metrics), log);
  }

  private static async serve(
    at: ListenAddress,
    readers: readonly TargetReader[],
    answer: (request: IncomingMessage, response: ServerResponse) => Promise<void>,
    log: Logger,
  ): Promise<StatusServer> {
    const server = createServer((request, response) => {
      answer(request, response).catch((error: unknown) => {
        log.warn({ path: request.url, error: messageOf(error) }, 'the status server could not answer');
        if (!response.headersSent) response.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
        response.end(`unavailable: ${messageOf(error)}\n`);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error) =>
        reject(
          usageError(
            `cannot listen on ${at.host}:${at.port}: ${messageOf(error)}`,
            'choose another port with --listen, or stop what uses it',
          ),
        ),
      );
      server.listen(at.port, at.host, () => resolve());
    });
    // A scrape must never keep the process alive once the work is done.
    server.unref();
    const bound = server.address();
    // Listening on TCP, the address is an AddressInfo (a string only for a pipe or socket file).
    const port = typeof bound === 'object' && bound !== null ? bound.port : at.port;
    log.info({ url: `http://${at.host.includes(':') ? `[${at.host}]` : at.host}:${port}/` }, 'status page and /metrics listening');
    return new StatusServer(server, readers, { host: at.host, port });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all(this.readers.map((reader) => reader.close()));
  }
}

async function route(request: IncomingMessage, response: ServerResponse, reader: TargetReader, metrics: MigrationMetrics): Promise<void> {
  if (!readOnly(request, response)) return;
  const path = new URL(request.url ?? '/', 'http://pgferry').pathname;
  if (path === '/metrics') {
    await refreshFromTarget(reader, metrics);
    const { contentType, body } = await metrics.text();
    response.writeHead(200, { 'content-type': contentType }).end(body);
    return;
  }
  await routeOne(path, response, reader, metrics);
}

async function routeInstance(
  request: IncomingMessage,
  response: ServerResponse,
  readers: ReadonlyMap<string, TargetReader>,
  metrics: InstanceMetrics,
): Promise<void> {
  if (!readOnly(request, response)) return;
  const path = new URL(request.url ?? '/', 'http://pgferry').pathname;
  const one = /^\/database\/([^/]+)(\/.*)$/.exec(path);
  if (one) {
    const database = decodeURIComponent(one[1]!);
    const reader = readers.get(database);
    if (reader) return routeOne(one[2]!, response, reader, metrics.of(database));
  }
  switch (path) {
    case '/metrics': {
      await Promise.all([...readers].map(([database, reader]) => refreshFromTarget(reader, metrics.of(database))));
      const { contentType, body } = await metrics.text();
      response.writeHead(200, { 'content-type': contentType }).end(body);
      return;
    }
    case '/status.json': {
      const databases = await Promise.all(
        [...readers].map(async ([database, reader]) => {
          const report = await reader.read();
          return { database, ...(report ? report.json : { phase: 'starting' }) };
        }),
      );
      json(response, { databases });
      return;
    }
    case '/':
      page(response, INSTANCE_PAGE);
      return;
    default:
      response
        .writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
        .end('not found: try /, /metrics, /status.json or /database/<name>/\n');
  }
}

/** Only reads are served. */
function readOnly(request: IncomingMessage, response: ServerResponse): boolean {
  if (request.method === 'GET' || request.method === 'HEAD') return true;
  response.writeHead(405, { allow: 'GET, HEAD' }).end();
  return false;
}

/** The phase and the applied totals the target records, into the metrics, before a scrape. */
async function refreshFromTarget(reader: TargetReader, metrics: MigrationMetrics): Promise<void> {
  const report = await reader.read();
  if (!report) return;
  metrics.phase(report.json.phase);
  metrics.applied({
    transactions: report.json.appliedTransactions,
    tables: report.json.tables.map((t) => ({ ...t, table: t.name })),
  });
}

/** What one migration's server answers besides /metrics: its status, its lag, its page. */
async function routeOne(path: string, response: ServerResponse, reader: TargetReader, metrics: MigrationMetrics): Promise<void> {
  switch (path) {
    case '/status.json': {
      const report = await reader.read();
      json(response, report ? report.json : { phase: 'starting' });
      return;
    }
    case '/lag.json':
      json(response, { history: metrics.history.all, ...metrics.latest });
      return;
    case '/':
      page(response, STATUS_PAGE);
      return;
    default:
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try /, /metrics or /status.json\n');
  }
}

/**
 * The target's state, read through one session kept for the server's life (a page refreshing
 * every two seconds and a scrape every few would otherwise open a connection each time),
 * opened again after a failure; every read has a deadline, so a page never hangs on a stuck
 * target. pg queues concurrent reads on the one session.
 */
class TargetReader {
  private session: Promise<pg.Client> | undefined;

  constructor(private readonly target: ConnectionSpec) {}

  async read(): Promise<StatusReport | undefined> {
    const session = (this.session ??= this.open());
    try {
      return await readStatusReport(await session);
    } catch (error) {
      if (this.session === session) this.session = undefined;
      void session.then(closeClient, () => undefined);
      throw error;
    }
  }

  private async open(): Promise<pg.Client> {
    const { client } = await connect(this.target);
    await client.query(`SET statement_timeout = '5s'`);
    return client;
  }

  async close(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    if (session) await session.then(closeClient, () => undefined);
  }
}

function page(response: ServerResponse, html: string): void {
  response
    .writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      // Everything is inline; nothing is loaded from anywhere else.
      'content-security-policy':
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
    })
    .end(html);
}

function json(response: ServerResponse, value: unknown): void {
  response.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(JSON.stringify(value));
}
