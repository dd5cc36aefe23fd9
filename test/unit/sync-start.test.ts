import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PgferryError } from '../../src/errors.js';
import { migrationNames } from '../../src/sync/source-setup.js';
import { decideSyncStart, type SyncStart, type SyncStartFacts } from '../../src/sync/start-decision.js';

const names = migrationNames('shop');
type StateFacts = NonNullable<SyncStartFacts['state']>;

function state(overrides: Partial<StateFacts> = {}): StateFacts {
  return {
    name: 'shop',
    slot: 'pgferry_shop',
    phase: 'streaming',
    appliedLsn: 0x16b3748n,
    stopRequestedAt: null,
    stopReason: null,
    ...overrides,
  };
}

function facts(overrides: Partial<SyncStartFacts> = {}): SyncStartFacts {
  return {
    state: undefined,
    names,
    nameGiven: false,
    dropExisting: false,
    targetClone: 'none',
    targetShown: 'target db "shop" on localhost:5432',
    copyResumable: false,
    ...overrides,
  };
}

function refused(start: SyncStart): PgferryError {
  if (start.kind !== 'refuse') assert.fail(`expected a refusal, got ${JSON.stringify(start)}`);
  return start.error;
}

describe('decideSyncStart: which state the target holds decides how sync starts', () => {
  it('clones an empty target, owning the default slot name but not one given by hand', () => {
    assert.deepEqual(decideSyncStart(facts()), { kind: 'clone', restarting: false, copyInterrupted: false, ownsSlotName: true });
    assert.deepEqual(decideSyncStart(facts({ nameGiven: true })), {
      kind: 'clone',
      restarting: false,
      copyInterrupted: false,
      ownsSlotName: false,
    });
  });

  it('continues from the position the target recorded', () => {
    assert.deepEqual(decideSyncStart(facts({ state: state() })), { kind: 'resume', appliedLsn: 0x16b3748n });
    assert.deepEqual(decideSyncStart(facts({ state: state({ phase: 'stopped' }), nameGiven: true })), {
      kind: 'resume',
      appliedLsn: 0x16b3748n,
    });
  });

  it('copies again when an earlier sync stopped during its copy, owning the slot its state records', () => {
    assert.deepEqual(decideSyncStart(facts({ state: state({ phase: 'cloning' }), nameGiven: true })), {
      kind: 'clone',
      restarting: true,
      copyInterrupted: true,
      ownsSlotName: true,
    });
    assert.deepEqual(decideSyncStart(facts({ state: state({ phase: 'cloning', slot: 'pgferry_other' }), nameGiven: true })), {
      kind: 'clone',
      restarting: true,
      copyInterrupted: true,
      ownsSlotName: false,
    });
  });

  it('refuses a target that follows another migration', () => {
    const error = refused(decideSyncStart(facts({ state: state({ name: 'books', slot: 'pgferry_books' }), nameGiven: true })));
    assert.equal(error.code, 'wrong-migration');
    assert.equal(error.kind, 'usage');
    assert.equal(error.message, 'the target already follows migration "books", not "shop"');
    assert.equal(error.fix, 'run with --name books, or run pgferry cleanup first');
  });

  it('refuses a migration that is over', () => {
    const at = new Date('2026-12-01T10:00:00.000Z');
    const error = refused(decideSyncStart(facts({ state: state({ stopRequestedAt: at, stopReason: 'cut over' }) })));
    assert.equal(error.code, 'wrong-migration');
    assert.equal(
      error.message,
      'migration "shop" is over: cut over at 2026-12-01T10:00:00.000Z, and the application may write to the target now',
    );
    assert.match(refused(decideSyncStart(facts({ state: state({ stopRequestedAt: at }) }))).message, /is over: a stop was requested at /);
  });

  it('refuses a clone made without sync, finished or not', () => {
    for (const targetClone of ['finished', 'interrupted'] as const) {
      const error = refused(decideSyncStart(facts({ targetClone })));
      assert.equal(error.code, 'wrong-migration');
      assert.equal(
        error.message,
        'the target (target db "shop" on localhost:5432) holds a clone made without sync: its rows match no replication slot',
      );
      assert.equal(error.fix, "pass --drop-existing to copy again at the slot's snapshot, or use an empty target database");
    }
  });

  it('starts over with --drop-existing, whatever the target holds', () => {
    const over = state({ name: 'books', slot: 'pgferry_books', stopRequestedAt: new Date(), stopReason: 'cut over' });
    assert.deepEqual(decideSyncStart(facts({ state: over, nameGiven: true, dropExisting: true })), {
      kind: 'clone',
      restarting: true,
      copyInterrupted: false,
      ownsSlotName: true,
    });
    assert.deepEqual(decideSyncStart(facts({ state: state(), dropExisting: true })), {
      kind: 'clone',
      restarting: true,
      copyInterrupted: false,
      ownsSlotName: true,
    });
    assert.deepEqual(decideSyncStart(facts({ targetClone: 'finished', nameGiven: true, dropExisting: true })), {
      kind: 'clone',
      restarting: false,
      copyInterrupted: false,
      ownsSlotName: true,
    });
  });

  it('continues a copy at per-table snapshots that stopped half-way, unless --drop-existing', () => {
    const cloning = state({ phase: 'cloning' });
    assert.deepEqual(decideSyncStart(facts({ state: cloning, copyResumable: true })), { kind: 'resume-copy' });
    assert.equal(decideSyncStart(facts({ state: cloning, copyResumable: true, dropExisting: true })).kind, 'clone');
    assert.equal(decideSyncStart(facts({ state: cloning, copyResumable: false })).kind, 'clone');
  });
});
