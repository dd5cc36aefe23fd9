import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SpoolLog, type Extent } from '../../src/replication/spool.js';

const payload = (n: number, size = 100) => Buffer.alloc(size, n % 251);

async function readAll(log: SpoolLog, extents: readonly Extent[]): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const block of log.read(extents, () => true)) for (const message of block) out.push(Buffer.from(message));
  return out;
}

/** Appends like a transaction buffer does: one extent per run of adjacent bytes. */
function appendAll(log: SpoolLog, messages: readonly Buffer[]): Extent[] {
  const extents: Extent[] = [];
  for (const message of messages) {
    const extent = log.append(message);
    const last = extents[extents.length - 1];
    if (last && last.segment === extent.segment && last.offset + last.length === extent.offset) last.length += extent.length;
    else {
      log.retain(extent);
      extents.push(extent);
    }
  }
  return extents;
}

describe('spool log', () => {
  it('reads back every message of interleaved writers, in order, across segments and unwritten blocks', async () => {
    const log = new SpoolLog({ segmentBytes: 4096, writeBlock: 1000 });
    const a: Buffer[] = [];
    const b: Buffer[] = [];
    const aExtents: Extent[] = [];
    const bExtents: Extent[] = [];
    for (let i = 0; i < 200; i++) {
      const [list, extents] = i % 3 === 0 ? [b, bExtents] : [a, aExtents];
      const message = payload(i, 10 + (i % 7) * 50);
      list.push(message);
      extents.push(...appendAll(log, [message]));
    }
    assert.ok(log.segmentFiles > 1, 'the writers filled more than one segment');
    assert.deepEqual(await readAll(log, aExtents), a);
    assert.deepEqual(await readAll(log, bExtents), b);
    assert.deepEqual(await readAll(log, aExtents), a, 'read again, the same');
    log.close();
  });

  it('deletes a segment once no transaction uses it, and keeps the one being written', async () => {
    const log = new SpoolLog({ segmentBytes: 1024, writeBlock: 256 });
    const first = appendAll(
      log,
      Array.from({ length: 30 }, (_, i) => payload(i)),
    );
    const second = appendAll(
      log,
      Array.from({ length: 5 }, (_, i) => payload(i)),
    );
    const before = log.segmentFiles;
    log.release(first);
    assert.ok(log.segmentFiles < before, `${log.segmentFiles} segment files after releasing the first writer, ${before} before`);
    assert.deepEqual(
      await readAll(log, second),
      Array.from({ length: 5 }, (_, i) => payload(i)),
    );
    log.release(second);
    assert.equal(log.bytesOnDisk, 0);
    log.close();
  });
});
