import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PgferryError } from '../../src/errors.js';
import {
  decodePgoutput,
  PGOUTPUT,
  PGOUTPUT_OFFSET,
  TransactionAssembler,
  UNCHANGED,
  type SourceTransaction,
} from '../../src/replication/index.js';

/** Builds pgoutput messages byte by byte, as the protocol documentation lays them out. */
class Message {
  private readonly parts: Buffer[] = [];
  constructor(tag: string) {
    this.parts.push(Buffer.from(tag, 'latin1'));
  }
  int8(n: number): this {
    this.parts.push(Buffer.from([n]));
    return this;
  }
  int16(n: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(n);
    this.parts.push(b);
    return this;
  }
  int32(n: number): this {
    const b = Buffer.alloc(4);
    if (n < 0) b.writeInt32BE(n);
    else b.writeUInt32BE(n);
    this.parts.push(b);
    return this;
  }
  int64(n: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(n);
    this.parts.push(b);
    return this;
  }
  string(s: string): this {
    this.parts.push(Buffer.from(`${s}\0`, 'utf8'));
    return this;
  }
  tuple(values: ReadonlyArray<string | null | 'unchanged'>): this {
    this.int16(values.length);
    for (const v of values) {
      if (v === null) this.parts.push(Buffer.from('n'));
      else if (v === 'unchanged') this.parts.push(Buffer.from('u'));
      else {
        const text = Buffer.from(v, 'utf8');
        this.parts.push(Buffer.from('t'));
        this.int32(text.length);
        this.parts.push(text);
      }
    }
    return this;
  }
  get buffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

const plain = { inStream: false, abortInfo: false };

describe('pgoutput decoder', () => {
  it('decodes BEGIN and COMMIT', () => {
    const begin = decodePgoutput(new Message('B').int64(0x100n).int64(5n).int32(733).buffer, plain);
    assert.deepEqual(begin, { tag: 'begin', finalLsn: 0x100n, commitTime: 5n, xid: 733 });
    const commit = decodePgoutput(new Message('C').int8(0).int64(0x100n).int64(0x128n).int64(5n).buffer, plain);
    assert.deepEqual(commit, { tag: 'commit', flags: 0, commitLsn: 0x100n, endLsn: 0x128n, commitTime: 5n });
  });

  it('decodes a relation with its key columns and replica identity', () => {
    const m = new Message('R').int32(16384).string('public').string('Odd "name"').int8('f'.charCodeAt(0)).int16(2);
    m.int8(1).string('id').int32(23).int32(-1).int8(0).string('note').int32(25).int32(-1);
    const relation = decodePgoutput(m.buffer, plain);
    assert.equal(relation.tag, 'relation');
    if (relation.tag !== 'relation') return;
    assert.equal(relation.name, 'Odd "name"');
    assert.equal(relation.replicaIdentity, 'full');
    assert.deepEqual(
      relation.columns.map((c) => [c.name, c.isKey, c.typeOid]),
      [
        ['id', true, 23],
        ['note', false, 25],
      ],
    );
  });

  it('decodes updates with old keys, NULLs and unchanged TOAST values', () => {
    const m = new Message('U').int32(16384).int8('K'.charCodeAt(0)).tuple(['1', null]).int8('N'.charCodeAt(0)).tuple(['2', 'unchanged']);
    const update = decodePgoutput(m.buffer, plain);
    assert.equal(update.tag, 'update');
    if (update.tag !== 'update') return;
    assert.equal(update.oldKind, 'key');
    assert.deepEqual(update.oldTuple, ['1', null]);
    assert.deepEqual(update.newTuple, ['2', UNCHANGED]);
  });

  it('reads the xid of data messages only inside a stream', () => {
    const streamed = new Message('I').int32(991).int32(16384).int8('N'.charCodeAt(0)).tuple(['é']).buffer;
    const insert = decodePgoutput(streamed, { inStream: true, abortInfo: false });
    assert.deepEqual(insert, { tag: 'insert', xid: 991, relationId: 16384, newTuple: ['é'] });
  });

  it('decodes TRUNCATE flags, messages and protocol 4 stream aborts', () => {
    const truncate = decodePgoutput(new Message('T').int32(2).int8(3).int32(1).int32(2).buffer, plain);
    assert.deepEqual(truncate, { tag: 'truncate', xid: undefined, relationIds: [1, 2], cascade: true, restartIdentity: true });
    const message = decodePgoutput(
      new Message('M').int8(1).int64(0x50n).string('pgferry.fence').int32(2).int8(0x68).int8(0x69).buffer,
      plain,
    );
    assert.equal(message.tag, 'message');
    if (message.tag === 'message') assert.equal(message.content.toString(), 'hi');
    const abort = decodePgoutput(new Message('A').int32(10).int32(11).int64(0x70n).int64(9n).buffer, { inStream: false, abortInfo: true });
    assert.deepEqual(abort, { tag: 'stream-abort', xid: 10, subXid: 11, abortLsn: 0x70n, abortTime: 9n });
  });

  it('agrees with the named tags and the offsets the fast paths read in place', () => {
    // A const enum has no object at run time: each member is checked where tsc inlines it.
    const tags: ReadonlyArray<readonly [number, string]> = [
      [PGOUTPUT.begin, 'B'],
      [PGOUTPUT.commit, 'C'],
      [PGOUTPUT.origin, 'O'],
      [PGOUTPUT.relation, 'R'],
      [PGOUTPUT.type, 'Y'],
      [PGOUTPUT.insert, 'I'],
      [PGOUTPUT.update, 'U'],
      [PGOUTPUT.delete, 'D'],
      [PGOUTPUT.truncate, 'T'],
      [PGOUTPUT.message, 'M'],
      [PGOUTPUT.streamStart, 'S'],
      [PGOUTPUT.streamStop, 'E'],
      [PGOUTPUT.streamCommit, 'c'],
      [PGOUTPUT.streamAbort, 'A'],
    ];
    for (const [value, char] of tags) assert.equal(value, char.charCodeAt(0), char);
    const begin = new Message('B').int64(0x100n).int64(5n).int32(733).buffer;
    assert.equal(begin.length, PGOUTPUT_OFFSET.beginLength);
    assert.equal(begin.readUInt32BE(PGOUTPUT_OFFSET.beginXid), 733);
    const commit = new Message('C').int8(0).int64(0x100n).int64(0x128n).int64(5n).buffer;
    assert.equal(commit.length, PGOUTPUT_OFFSET.commitLength);
    assert.deepEqual(
      [
        commit.readBigUInt64BE(PGOUTPUT_OFFSET.commitLsn),
        commit.readBigUInt64BE(PGOUTPUT_OFFSET.commitEndLsn),
        commit.readBigInt64BE(PGOUTPUT_OFFSET.commitTime),
      ],
      [0x100n, 0x128n, 5n],
    );
    const streamed = new Message('I').int32(991).int32(16384).int8('N'.charCodeAt(0)).tuple(['x']).buffer;
    assert.equal(streamed.readUInt32BE(PGOUTPUT_OFFSET.streamedXid), 991);
    const insert = new Message('I').int32(16384).int8('N'.charCodeAt(0)).tuple(['x']).buffer;
    assert.equal(insert.readUInt32BE(PGOUTPUT_OFFSET.changeRelation), 16384);
    const truncate = new Message('T').int32(2).int8(0).int32(16390).int32(16391).buffer;
    assert.equal(truncate.readUInt32BE(PGOUTPUT_OFFSET.truncateFirstRelation), 16390);
  });

  it('fails loudly on a truncated message', () => {
    const whole = new Message('I').int32(16384).int8('N'.charCodeAt(0)).tuple(['abcdef']).buffer;
    assert.throws(() => decodePgoutput(whole.subarray(0, whole.length - 2), plain), /ends early/);
  });
});

describe('transaction assembly', () => {
  const insert = (xid: number | undefined, value: string) => {
    const m = xid === undefined ? new Message('I') : new Message('I').int32(xid);
    return m.int32(16384).int8('N'.charCodeAt(0)).tuple([value]).buffer;
  };
  const collect = async (transaction: SourceTransaction) => {
    const values: unknown[] = [];
    for await (const block of transaction.messageBlocks())
      for (const payload of block) {
        const decoded = decodePgoutput(payload, { inStream: transaction.streamed, abortInfo: false });
        if (decoded.tag === 'insert') values.push(decoded.newTuple[0]);
      }
    return values;
  };

  it('a stream out of protocol order is undecodable, by code', () => {
    const assembler = new TransactionAssembler({ abortInfo: false, memoryLimit: 1 << 20, onTransaction: () => undefined });
    const undecodable = (message: RegExp) => (error: unknown) =>
      error instanceof PgferryError && error.code === 'stream-undecodable' && message.test(error.message);
    assert.throws(
      () => assembler.push(new Message('C').int8(0).int64(0x100n).int64(0x128n).int64(5n).buffer),
      undecodable(/^pgoutput: COMMIT without BEGIN$/),
    );
    assert.throws(() => assembler.push(insert(undefined, 'x')), undecodable(/'I' message outside a transaction/));
    assert.throws(
      () => assembler.push(new Message('c').int32(7).int8(0).int64(0x200n).int64(0x228n).int64(1n).buffer),
      undecodable(/stream commit of unknown transaction 7/),
    );
    assembler.close();
  });

  it('interleaved streamed transactions commit whole, without the rolled-back subtransaction, through the spool', async () => {
    const done: SourceTransaction[] = [];
    // A budget of a few bytes sends every transaction to disk at once.
    const assembler = new TransactionAssembler({ abortInfo: false, memoryLimit: 16, onTransaction: (t) => done.push(t) });
    assembler.push(new Message('S').int32(100).int8(1).buffer);
    assembler.push(insert(100, 'a1'));
    assembler.push(insert(101, 'a-sub'));
    assembler.push(new Message('E').buffer);
    assembler.push(new Message('S').int32(200).int8(1).buffer);
    assembler.push(insert(200, 'b1'));
    assembler.push(new Message('E').buffer);
    assembler.push(new Message('A').int32(100).int32(101).buffer);
    assembler.push(new Message('S').int32(100).int8(0).buffer);
    assembler.push(insert(100, 'a2'));
    assembler.push(new Message('E').buffer);
    assembler.push(new Message('A').int32(200).int32(200).buffer);
    assembler.push(new Message('c').int32(100).int8(0).int64(0x200n).int64(0x228n).int64(1n).buffer);
    assert.equal(done.length, 1);
    assert.ok(assembler.bytesSpilled > 0, 'the transaction went to the spool');
    assert.deepEqual(await collect(done[0]!), ['a1', 'a2']);
    assert.deepEqual(await collect(done[0]!), ['a1', 'a2'], 'a transaction can be read again for a replay');
    done[0]!.release();
    assembler.close();
  });

  it('marks the transactions that carry a schema change: a capture message, or a row of the queue table (sources before 14)', () => {
    const done: SourceTransaction[] = [];
    const assembler = new TransactionAssembler({ abortInfo: false, memoryLimit: 1 << 20, onTransaction: (t) => done.push(t) });
    const transaction = (...messages: Buffer[]) => {
      assembler.push(new Message('B').int64(0x300n).int64(1n).int32(7).buffer);
      for (const m of messages) assembler.push(m);
      assembler.push(new Message('C').int8(0).int64(0x300n).int64(0x330n).int64(1n).buffer);
    };
    const message = (prefix: string) => new Message('M').int8(1).int64(0x310n).string(prefix).int32(2).int8(0x7b).int8(0x7d).buffer;
    const relation = (oid: number, schema: string) =>
      new Message('R').int32(oid).string(schema).string('queue_x').int8('d'.charCodeAt(0)).int16(0).buffer;
    const insertInto = (oid: number) => new Message('I').int32(oid).int8('N'.charCodeAt(0)).tuple(['{}']).buffer;
    transaction(insert(undefined, 'x'));
    transaction(message('pgferry.ddl.shop'));
    transaction(message('pgferry.fence'));
    transaction(relation(20001, 'pgferry_capture'), insertInto(20001));
    transaction(relation(20002, 'public'), insertInto(20002));
    transaction(insertInto(20001));
    assert.deepEqual(
      done.map((t) => t.carriesSchemaChange),
      [false, true, false, true, false, true],
    );
    assembler.close();
  });

  it('plain transactions come out in commit order with their end position', async () => {
    const done: SourceTransaction[] = [];
    const assembler = new TransactionAssembler({ abortInfo: false, memoryLimit: 1 << 20, onTransaction: (t) => done.push(t) });
    assembler.push(new Message('B').int64(0x300n).int64(1n).int32(7).buffer);
    assert.equal(assembler.insideTransaction, true);
    assembler.push(insert(undefined, 'x'));
    assembler.push(new Message('C').int8(0).int64(0x300n).int64(0x330n).int64(1n).buffer);
    assert.equal(assembler.insideTransaction, false);
    assert.equal(done[0]!.endLsn, 0x330n);
    assert.deepEqual(await collect(done[0]!), ['x']);
    assembler.close();
  });
});
