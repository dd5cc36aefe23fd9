/**
 * The library's runnable example (examples/migrate.ts, issue 20) run as a user would run it:
 * its own process, importing pgferry by its published name only, driving check, sync, cutover
 * and verify against real servers, with the connections in the environment.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { useClusterPair } from '../harness/index.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/migrate.js', import.meta.url));

describe('examples/migrate.ts, 16 → 18', () => {
  const pair = useClusterPair(16, 18);

  it('migrates through the published entry point and verifies every row', async () => {
    const db = await pair.source.createDatabase({ prefix: 'example' });
    await pair.target.sql('postgres', `CREATE DATABASE ${db}`);
    await pair.source.sql(
      db,
      `CREATE TABLE customers (id bigserial PRIMARY KEY, name text NOT NULL);
       CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer bigint REFERENCES customers, total numeric);
       INSERT INTO customers (name) SELECT 'customer ' || g FROM generate_series(1, 2000) g;
       INSERT INTO orders (customer, total) SELECT 1 + g % 2000, g / 7.0 FROM generate_series(1, 10000) g`,
    );
    const child = spawn(process.execPath, [EXAMPLE], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PGFERRY_SOURCE: pair.source.url(db), PGFERRY_TARGET: pair.target.url(db) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, output);
    assert.match(output, /synced migration example_\w+: 2 tables copied, caught up/);
    assert.match(output, /cut over: writes frozen \d+ ms, fence [0-9A-F]+\/[0-9A-F]+/);
    assert.match(output, /verified: identical/);
    assert.deepEqual((await pair.target.sql(db, `SELECT count(*)::int AS n FROM orders`)).rows, [{ n: 10000 }]);
  });
});
