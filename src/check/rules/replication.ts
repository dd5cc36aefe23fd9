import type { Finding } from '../finding.js';
import type { SourceFacts } from '../facts.js';
import { LOGICAL_DECODING_FIX, parameterFix, replicationRoleFix } from '../managed-services.js';

/** pgferry holds one slot and one walsender connection for the whole migration. */
const SLOTS_NEEDED = 1;
const SENDERS_NEEDED = 1;

export function replicationFindings(source: SourceFacts): Finding[] {
  const findings: Finding[] = [];
  if (source.walLevel !== 'logical') {
    findings.push({
      id: 'source.wal-level',
      severity: 'error',
      message: `wal_level is "${source.walLevel}" on the source; change streaming needs "logical"`,
      why: 'pgferry reads committed changes through a logical replication slot, which only exists with wal_level = logical',
      fix: LOGICAL_DECODING_FIX,
    });
  }
  const freeSlots = source.maxReplicationSlots - source.slotsUsed;
  if (freeSlots < SLOTS_NEEDED) {
    const value = String(source.slotsUsed + SLOTS_NEEDED);
    findings.push({
      id: 'source.replication-slots',
      severity: 'error',
      message: `no free replication slot on the source: max_replication_slots = ${source.maxReplicationSlots}, ${source.slotsUsed} in use`,
      why: 'pgferry creates one logical replication slot; it holds the copy snapshot and the position of the change stream',
      fix: `${parameterFix({ parameter: 'max_replication_slots', value, restart: true })}\nor drop a slot that is no longer used: SELECT pg_drop_replication_slot('name');`,
    });
  }
  const freeSenders = source.maxWalSenders - source.sendersUsed;
  if (freeSenders < SENDERS_NEEDED) {
    const value = String(source.sendersUsed + SENDERS_NEEDED);
    findings.push({
      id: 'source.wal-senders',
      severity: 'error',
      message: `no free WAL sender on the source: max_wal_senders = ${source.maxWalSenders}, ${source.sendersUsed} in use`,
      why: 'the change stream is a replication connection, served by one WAL sender process',
      fix: parameterFix({ parameter: 'max_wal_senders', value, restart: true }),
    });
  }
  if (!source.hasReplicationAttribute && source.managedReplicationRole === undefined) {
    findings.push({
      id: 'source.replication-privilege',
      severity: 'error',
      message: `role "${source.server.currentUser}" may not open replication connections on the source`,
      why: 'creating the slot and streaming changes needs the REPLICATION attribute (or the managed service role that grants it)',
      fix: replicationRoleFix(source.server.currentUser),
    });
  }
  if (source.idleSlotTimeoutSeconds !== undefined && source.idleSlotTimeoutSeconds > 0) {
    findings.push({
      id: 'source.idle-slot-timeout',
      severity: 'warning',
      message: `idle_replication_slot_timeout is ${source.idleSlotTimeoutSeconds} s on the source`,
      why: 'if pgferry is stopped for longer than that, the server invalidates its slot and the migration must start again',
      fix: parameterFix({ parameter: 'idle_replication_slot_timeout', value: '0', restart: false }),
    });
  }
  return findings;
}
