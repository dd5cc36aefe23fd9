import pg from 'pg';
import type { Cluster } from './cluster.js';

/**
 * A pgbench-shaped write load, in Node because CI has no pgbench binary: the tables of
 * `pgbench -i -s scale` and its TPC-B-like transaction (three updates, one select, one insert).
 */
export async function createPgbenchTables(cluster: Cluster, db: string, scale: number): Promise<void> {
  await cluster.sql(
    db,
    `CREATE TABLE pgbench_branches (bid int PRIMARY KEY, bbalance int, filler char(88));
     CREATE TABLE pgbench_tellers (tid int PRIMARY KEY, bid int, tbalance int, filler char(84));
     CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84));
     CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));
     INSERT INTO pgbench_branches SELECT g, 0, NULL FROM generate_series(1, ${scale}) g;
     INSERT INTO pgbench_tellers SELECT g, (g - 1) / 10 + 1, 0, NULL FROM generate_series(1, ${scale * 10}) g;
     INSERT INTO pgbench_accounts SELECT g, (g - 1) / 100000 + 1, 0, '' FROM generate_series(1, ${scale * 100_000}) g;`,
  );
}

export interface LoadOptions {
  readonly clients: number;
  readonly scale: number;
  /** Transactions per second, all clients together; as fast as possible when absent. */
  readonly ratePerSecond?: number;
}

export interface LoadReport {
  readonly committed: number;
  readonly errors: string[];
}

export interface Load {
  readonly committed: number;
  stop(): Promise<LoadReport>;
}

const random = (low: number, high: number) => low + Math.floor(Math.random() * (high - low + 1));

export function startLoad(url: string, options: LoadOptions): Load {
  let stopping = false;
  let committed = 0;
  const errors: string[] = [];
  const interval = options.ratePerSecond ? (1000 * options.clients) / options.ratePerSecond : 0;

  const client = async (): Promise<void> => {
    const session = new pg.Client({ connectionString: url });
    session.on('error', () => undefined);
    await session.connect();
    try {
      let next = performance.now();
      while (!stopping) {
        const aid = random(1, options.scale * 100_000);
        const tid = random(1, options.scale * 10);
        const bid = random(1, options.scale);
        const delta = random(-5000, 5000);
        await session.query('BEGIN');
        await session.query('UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2', [delta, aid]);
        await session.query('SELECT abalance FROM pgbench_accounts WHERE aid = $1', [aid]);
        await session.query('UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2', [delta, tid]);
        await session.query('UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2', [delta, bid]);
        await session.query('INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)', [tid, bid, aid, delta]);
        await session.query('COMMIT');
        committed++;
        if (interval > 0) {
          next += interval;
          const wait = next - performance.now();
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        }
      }
    } catch (error) {
      if (!stopping) errors.push(String(error));
    } finally {
      await session.end().catch(() => undefined);
    }
  };

  const clients = Array.from({ length: options.clients }, () => client().catch((error: unknown) => void errors.push(String(error))));
  let report: Promise<LoadReport> | undefined;
  return {
    get committed() {
      return committed;
    },
    stop() {
      stopping = true;
      report ??= Promise.all(clients).then(() => ({ committed, errors }));
      return report;
    },
  };
}
