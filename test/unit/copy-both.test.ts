import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { CopyBothQuery } from '../../src/replication/copy-both.js';

/** A stand-in for pg's connection: a socket with pg's one 'data' listener, and what was written. */
function fakeConnection() {
  const socket = new EventEmitter() as EventEmitter & {
    written: Buffer[];
    paused: boolean;
    write(b: Buffer): boolean;
    pause(): void;
    resume(): void;
  };
  socket.written = [];
  socket.paused = false;
  socket.write = (b: Buffer) => {
    socket.written.push(b);
    return true;
  };
  socket.pause = () => void (socket.paused = true);
  socket.resume = () => void (socket.paused = false);
  const pgReceived: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => pgReceived.push(chunk));
  const sent: string[] = [];
  const connection = { stream: socket as unknown as Socket, query: (text: string) => void sent.push(text) };
  return { socket, connection, pgReceived, sent };
}

function frame(code: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(code, 0, 'latin1');
  header.writeUInt32BE(4 + body.length, 1);
  return Buffer.concat([header, body]);
}

describe('CopyBothQuery', () => {
  const payloads = [Buffer.from('w-small'), Buffer.alloc(70_000, 7), Buffer.from('k'), Buffer.alloc(0), Buffer.from('w-last')];
  const stream = Buffer.concat([
    frame('W', Buffer.from([0, 0, 0])),
    frame('S', Buffer.from('a\0b\0')),
    ...payloads.map((p) => frame('d', p)),
  ]);

  it('cuts CopyData payloads out of the socket stream however it is split', () => {
    for (const size of [1, 2, 3, 4, 5, 6, 7, 13, 4096, 65536, stream.length]) {
      const { socket, connection, pgReceived, sent } = fakeConnection();
      const received: Buffer[] = [];
      const query = new CopyBothQuery('START_REPLICATION …', {
        onData: (b, start, end) => received.push(Buffer.from(b.subarray(start, end))),
        onEnd: () => assert.fail('not ended'),
      });
      query.submit(connection);
      assert.deepEqual(sent, ['START_REPLICATION …']);
      for (let i = 0; i < stream.length; i += size) socket.emit('data', stream.subarray(i, i + size));
      assert.deepEqual(received, payloads, `split every ${size} bytes`);
      assert.equal(pgReceived.length, 0, 'pg sees nothing while the copy runs');
    }
  });

  it("gives the socket back to pg at an ErrorResponse, error included, and at the server's CopyDone", () => {
    const error = frame('E', Buffer.from('SERROR\0\0'));
    const ready = frame('Z', Buffer.from('I'));
    for (const [ending, handed] of [
      [error, Buffer.concat([error, ready])],
      [frame('c', Buffer.alloc(0)), ready],
    ] as const) {
      const { socket, connection, pgReceived } = fakeConnection();
      const received: Buffer[] = [];
      const query = new CopyBothQuery('START_REPLICATION …', {
        onData: (b, start, end) => received.push(b.subarray(start, end)),
        onEnd: () => undefined,
      });
      query.submit(connection);
      socket.emit('data', Buffer.concat([frame('W', Buffer.alloc(3)), frame('d', Buffer.from('k1')), ending, ready]));
      assert.deepEqual(received, [Buffer.from('k1')]);
      assert.deepEqual(Buffer.concat(pgReceived), handed);
      socket.emit('data', Buffer.from('more'));
      assert.deepEqual(Buffer.concat(pgReceived.slice(-1)), Buffer.from('more'), 'pg reads the socket again');
    }
  });

  it('holds status updates until the copy has started, then frames them as CopyData', () => {
    const { socket, connection } = fakeConnection();
    const query = new CopyBothQuery('START_REPLICATION …', { onData: () => undefined, onEnd: () => undefined });
    query.submit(connection);
    query.write(Buffer.from('r1'));
    assert.equal(socket.written.length, 0);
    socket.emit('data', frame('W', Buffer.alloc(3)));
    query.write(Buffer.from('r2'));
    assert.deepEqual(socket.written, [frame('d', Buffer.from('r1')), frame('d', Buffer.from('r2'))]);
  });
});
