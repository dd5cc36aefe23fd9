import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { PgferryError } from '../../src/errors.js';
import { isConnectionEnded } from '../../src/plumbing/index.js';
import { isTransient } from '../../src/sync/transient.js';

/** A server error as pg-protocol builds it from an ErrorResponse. */
function serverError(code: string, message: string, severity = 'ERROR'): pg.DatabaseError {
  const error = new pg.DatabaseError(message, message.length, 'error');
  error.code = code;
  error.severity = severity;
  return error;
}

/** A Node.js socket error, as net raises it. */
function systemError(code: string, syscall: string): Error {
  return Object.assign(new Error(`${syscall} ${code}`), { code, errno: -104, syscall });
}

describe("isTransient: sync reconnects by the error type and code, never by pgferry's wording", () => {
  it('retries server errors a reconnect cures', () => {
    assert.equal(isTransient(serverError('57P01', 'terminating connection due to administrator command', 'FATAL')), true);
    assert.equal(isTransient(serverError('57P03', 'the database system is starting up', 'FATAL')), true);
    assert.equal(isTransient(serverError('53300', 'sorry, too many clients already', 'FATAL')), true);
    assert.equal(isTransient(serverError('55006', 'replication slot "pgferry_x" is active for PID 42')), true);
    assert.equal(isTransient(serverError('55P03', 'canceling statement due to lock timeout')), true);
    assert.equal(isTransient(serverError('08006', 'connection failure')), true, 'the connection-exception class');
  });

  it('retries a session the server ended, whatever its code', () => {
    assert.equal(isTransient(serverError('25P03', 'terminating connection due to idle-in-transaction timeout', 'FATAL')), true);
    assert.equal(isTransient(serverError('40001', 'terminating connection due to conflict with recovery', 'FATAL')), true);
  });

  it('retries socket errors', () => {
    assert.equal(isTransient(systemError('ECONNRESET', 'read')), true);
    assert.equal(isTransient(systemError('ECONNREFUSED', 'connect')), true);
    assert.equal(isTransient(systemError('EPIPE', 'write')), true);
  });

  it("retries pgferry's own errors of the connection kind", () => {
    assert.equal(isTransient(new PgferryError('connection-lost', 'the source ended the replication stream', { side: 'source' })), true);
    assert.equal(isTransient(new PgferryError('connection-lost', 'the replication connection closed', { side: 'source' })), true);
    assert.equal(isTransient(new PgferryError('connection', 'source: could not connect')), true);
  });

  it('retries the code-less errors node-postgres raises when a connection ends', () => {
    for (const message of [
      'Connection terminated unexpectedly',
      'Connection terminated',
      'Client was closed and is not queryable',
      'Client has encountered a connection error and is not queryable',
    ]) {
      assert.equal(isTransient(new Error(message)), true, message);
      assert.equal(isConnectionEnded(new Error(message)), true, message);
    }
  });

  it('looks through the causes pgferry wraps around them', () => {
    const wrapped = new PgferryError('query', 'source: IDENTIFY_SYSTEM failed: Connection terminated unexpectedly', {
      side: 'source',
      cause: new Error('Connection terminated unexpectedly'),
    });
    assert.equal(isTransient(wrapped), true);
    assert.equal(isTransient(new PgferryError('query', 'target: x failed', { cause: systemError('ECONNRESET', 'read') })), true);
    assert.equal(
      isTransient(
        new PgferryError('query', 'target: x failed', {
          cause: serverError('57P01', 'terminating connection due to administrator command', 'FATAL'),
        }),
      ),
      true,
    );
  });

  it('does not retry what a reconnect cannot cure', () => {
    assert.equal(isTransient(serverError('23505', 'duplicate key value violates unique constraint "t_pkey"')), false);
    assert.equal(isTransient(serverError('42501', 'permission denied for table t')), false);
    assert.equal(isTransient(new Error('boom')), false);
    assert.equal(isTransient('boom'), false);
    assert.equal(
      isTransient(
        new PgferryError('change-rejected', 'target: INSERT on t was rejected', { cause: serverError('23505', 'duplicate key') }),
      ),
      false,
    );
    assert.equal(isTransient(new PgferryError('slot-taken', 'source: replication slot pgferry_x is in use by another process')), false);
    assert.equal(isTransient(new PgferryError('wal-limit', 'source: replication slot pgferry_x holds 2 GB of WAL')), false);
  });

  it("does not take pgferry's own words for a lost connection", () => {
    assert.equal(isTransient(new Error('the source ended the replication stream')), false, 'only its code makes it transient');
    assert.equal(isConnectionEnded(new Error('a message that mentions Connection terminated in passing')), false);
  });
});
