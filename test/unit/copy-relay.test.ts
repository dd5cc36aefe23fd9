import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { CopyIn, CopyOutRelay } from '../../src/copy/copy-relay.js';

/** A stand-in for pg's connection: a socket with pg's one 'data' listener, and what was written. */
function fakeConnection(writeAnswers: () => boolean = () => true) {
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
    socket.written.push(Buffer.from(b));
    return writeAnswers();
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

describe('CopyOutRelay', () => {
  const rows = [Buffer.from('1\tone\n'), Buffer.alloc(70_000, 0x61), Buffer.from('3\n'), Buffer.alloc(0), Buffer.from('5\tlast\n')];
  const after = Buffer.concat([frame('C', Buffer.from('COPY 5\0')), frame('Z', Buffer.from('T'))]);
  // A notice and a parameter change may come between rows: they are the source's, not the target's.
  const stream = Buffer.concat([
    frame('H', Buffer.from([0, 0, 1, 0, 0])),
    frame('d', rows[0]!),
    frame('N', Buffer.alloc(3000, 0x6e)),
    ...rows.slice(1, 3).map((r) => frame('d', r)),
    frame('S', Buffer.from('a\0b\0')),
    ...rows.slice(3).map((r) => frame('d', r)),
    frame('c', Buffer.alloc(0)),
    after,
  ]);
  const expected = Buffer.concat(rows.map((r) => frame('d', r)));

  it("forwards exactly the source's CopyData messages to the target however the socket splits them, and gives pg the rest", () => {
    for (const size of [1, 2, 3, 4, 5, 6, 7, 13, 4096, 65536, stream.length]) {
      const source = fakeConnection();
      const target = fakeConnection();
      const into = new CopyIn('COPY t FROM STDIN');
      into.submit(target.connection);
      let counted = 0;
      const relay = new CopyOutRelay('COPY t TO STDOUT', into, (n) => (counted += n));
      relay.submit(source.connection);
      assert.deepEqual(source.sent, ['COPY t TO STDOUT']);
      for (let i = 0; i < stream.length; i += size) source.socket.emit('data', stream.subarray(i, i + size));
      assert.deepEqual(Buffer.concat(target.socket.written), expected, `split every ${size} bytes`);
      assert.deepEqual(Buffer.concat(source.pgReceived), after, `pg reads what follows CopyDone (split every ${size} bytes)`);
      const payload = rows.reduce((sum, r) => sum + r.length, 0);
      assert.equal(counted, payload);
      assert.equal(relay.payloadBytes, payload);
    }
  });

  it('gives the socket back to pg at an ErrorResponse, error included', () => {
    const source = fakeConnection();
    const target = fakeConnection();
    const into = new CopyIn('COPY t FROM STDIN');
    into.submit(target.connection);
    const relay = new CopyOutRelay('COPY t TO STDOUT', into, () => undefined);
    relay.submit(source.connection);
    const error = Buffer.concat([frame('E', Buffer.from('SERROR\0\0')), frame('Z', Buffer.from('E'))]);
    source.socket.emit('data', Buffer.concat([frame('H', Buffer.alloc(5)), frame('d', Buffer.from('k1\n')), error]));
    assert.deepEqual(Buffer.concat(target.socket.written), frame('d', Buffer.from('k1\n')));
    assert.deepEqual(Buffer.concat(source.pgReceived), error);
    source.socket.emit('data', Buffer.from('more'));
    assert.deepEqual(source.pgReceived.at(-1), Buffer.from('more'), 'pg reads the socket again');
  });

  it('stops reading the source while the target drains', () => {
    const source = fakeConnection();
    let full = true;
    const target = fakeConnection(() => !full);
    const into = new CopyIn('COPY t FROM STDIN');
    into.submit(target.connection);
    const relay = new CopyOutRelay('COPY t TO STDOUT', into, () => undefined);
    relay.submit(source.connection);
    source.socket.emit(
      'data',
      Buffer.concat([
        frame('H', Buffer.alloc(5)),
        frame('d', Buffer.from('a\n')),
        frame('N', Buffer.from('x')),
        frame('d', Buffer.from('b\n')),
      ]),
    );
    assert.equal(source.socket.paused, true);
    assert.equal(target.socket.listenerCount('drain'), 1, 'one wait for drain, however many writes were refused');
    full = false;
    target.socket.emit('drain');
    assert.equal(source.socket.paused, false);
  });
});
