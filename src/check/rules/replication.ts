import type { Finding } from '../finding.js';
import type { InactiveSlot, SourceFacts, WayBackFacts } from '../facts.js';
import { formatBytes } from './size.js';
import { quoteLiteral } from '../../plumbing/index.js';
import { LOGICAL_DECODING_FIX, parameterFix, replicationRoleFix } from '../managed-services.js';

/**
 * pgferry holds one slot and one walsender connection for the whole migration; sync's copy
 * takes a temporary slot per table snapshot beside it (up to --jobs at once, waiting for a free
 * one while it holds another), so at least one more slot.
 */
const SLOTS_NEEDED = 2;
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
  findings.push(
    ...capacity({
      id: 'source.replication-slots',
      parameter: 'max_replication_slots',
      what: 'replication slot',
      limit: source.maxReplicationSlots,
      used: source.slotsUsed,
      needed: SLOTS_NEEDED,
      why: "pgferry creates one logical replication slot, which holds the change stream's position, and sync's copy takes temporary slots beside it for its per-table snapshots (up to --jobs at once)",
      alternative: "or drop a slot that is no longer used: SELECT pg_drop_replication_slot('name');",
    }),
    ...capacity({
      id: 'source.wal-senders',
      parameter: 'max_wal_senders',
      what: 'WAL sender',
      limit: source.maxWalSenders,
      used: source.sendersUsed,
      needed: SENDERS_NEEDED,
      why: 'the change stream is a replication connection, served by one WAL sender process',
    }),
  );
  if (!source.hasReplicationAttribute && source.managedReplicationRole === undefined) {
    findings.push({
      id: 'source.replication-privilege',
      severity: 'error',
      message: `role "${source.server.currentUser}" may not open replication connections on the source`,
      why: 'creating the slot and streaming changes needs the REPLICATION attribute (or the managed service role that grants it)',
      fix: replicationRoleFix(source.server.currentUser),
    });
  }
  findings.push(...inactiveSlotFindings(source.inactiveSlots));
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

/** Slot names pgferry sync creates: pgferry_<migration name>. */
const PGFERRY_SLOT = /^pgferry_([a-z0-9_]+)$/;

/**
 * An inactive slot keeps every WAL file from its position on, so the source's disk fills while
 * nobody reads it. One left by an earlier pgferry migration is named with the command that
 * removes it; any other is named so the operator can judge whether it is still wanted.
 */
function inactiveSlotFindings(slots: readonly InactiveSlot[]): Finding[] {
  const held = (slot: InactiveSlot) =>
    `"${slot.name}" (${slot.otherDatabase === null ? '' : `database ${slot.otherDatabase}, `}${slot.retainedBytes === null ? 'invalidated' : `holds ${formatBytes(slot.retainedBytes)} of WAL`})`;
  const drop = (slot: InactiveSlot) =>
    `SELECT pg_drop_replication_slot(${quoteLiteral(slot.name)});${slot.otherDatabase === null ? '' : ` (connected to database ${slot.otherDatabase})`}`;
  const ours = slots.filter((s) => PGFERRY_SLOT.test(s.name));
  const others = slots.filter((s) => !PGFERRY_SLOT.test(s.name));
  const findings: Finding[] = [];
  if (ours.length > 0) {
    const names = ours.map((s) => PGFERRY_SLOT.exec(s.name)![1]!);
    findings.push({
      id: 'source.leftover-pgferry-slot',
      severity: 'warning',
      message: `an earlier pgferry migration left ${ours.length === 1 ? 'a replication slot' : 'replication slots'} on the source that no sync is reading: ${ours.map(held).join(', ')}`,
      why: "the source keeps every WAL file written since the slot's position until the slot is read or dropped, and its disk fills meanwhile",
      fix: `if that migration is over: ${names.map((n) => `pgferry cleanup --source … --target … --name ${n}`).join('; ')}. If it is still wanted, start its pgferry sync again`,
    });
  }
  if (others.length > 0) {
    findings.push({
      id: 'source.inactive-slots',
      severity: 'warning',
      message: `${others.length === 1 ? 'a replication slot' : `${others.length} replication slots`} on the source ${others.length === 1 ? 'is' : 'are'} not in use: ${others.map(held).join(', ')}`,
      why: "an unread slot keeps the WAL from its position on; with pgferry's slot retaining WAL too during the copy, the source's disk fills sooner",
      fix: `drop each one nothing will read again: ${others.map(drop).join(' ')}`,
    });
  }
  return findings;
}

interface Capacity {
  readonly id: string;
  readonly parameter: string;
  readonly what: string;
  readonly limit: number;
  readonly used: number;
  readonly needed: number;
  readonly why: string;
  readonly alternative?: string;
}

/** A server resource capped by a restart-only parameter, of which pgferry needs `needed` free. */
export function capacity(c: Capacity): Finding[] {
  if (c.limit - c.used >= c.needed) return [];
  const fix = parameterFix({ parameter: c.parameter, value: String(c.used + c.needed), restart: true });
  return [
    {
      id: c.id,
      severity: 'error',
      message: `no free ${c.what} on the source: ${c.parameter} = ${c.limit}, ${c.used} in use`,
      why: c.why,
      fix: c.alternative === undefined ? fix : `${fix}\n${c.alternative}`,
    },
  ];
}

/** How schema changes made on the source during sync reach the target (DESIGN decision 10). */
export function schemaChangeFindings(source: SourceFacts): Finding[] {
  return [schemaChangeMode(source)];
}

function schemaChangeMode(source: SourceFacts): Finding {
  if (source.eventTriggers.allowed) {
    return {
      id: 'schema-changes.mode',
      severity: 'info',
      message: 'schema changes on the source during sync are carried: the source role may create event triggers',
      why: 'sync installs an event trigger that puts each DDL command in the change stream; it is replayed on the target at its place among the rows',
      fix: 'nothing to do; run sync with --ddl stop to stop at the first schema change instead',
    };
  }
  return {
    id: 'schema-changes.mode',
    severity: 'warning',
    message: `the source role may not create event triggers (${source.eventTriggers.why}): during sync only columns added at the end of a table are followed; any other schema change stops sync, named`,
    why: 'event triggers need a superuser (on RDS and Aurora, a member of rds_superuser; other managed services differ, which is why check tries one and rolls it back), and without one DDL is not in the change stream',
    fix: 'run pgferry as a superuser (rds_superuser on RDS and Aurora) to carry schema changes, or freeze the schema during the migration',
  };
}

/**
 * The way back: after the cut-over, a slot on the target keeps the old primary current so the
 * application can return. What it needs there is a warning, not an error: `cutover
 * --no-fallback` goes without, and the cut-over refuses, before freezing, when it is missing.
 */
export function wayBackFindings(target: WayBackFacts, targetUser: string): Finding[] {
  const finding = (message: string, fix: string): Finding => ({
    id: 'target.way-back',
    severity: 'warning',
    message,
    why: 'the cut-over prepares the way back with a logical slot on the target, so the old primary can follow the new one and the application can return; without it the cut-over refuses unless given --no-fallback',
    fix: `${fix}\nor cut over without a way back: pgferry cutover --no-fallback`,
  });
  const findings: Finding[] = [];
  if (target.walLevel !== 'logical')
    findings.push(finding(`wal_level is "${target.walLevel}" on the target; the way back needs "logical"`, LOGICAL_DECODING_FIX));
  if (target.maxWalSenders < 1)
    findings.push(
      finding('max_wal_senders is 0 on the target', parameterFix({ parameter: 'max_wal_senders', value: '10', restart: true })),
    );
  if (target.freeSlots < 1)
    findings.push(
      finding(
        'the target has no free replication slot (max_replication_slots)',
        parameterFix({ parameter: 'max_replication_slots', value: '10', restart: true }),
      ),
    );
  if (!target.mayReplicate)
    findings.push(finding(`role "${targetUser}" may not create replication slots on the target`, replicationRoleFix(targetUser)));
  return findings;
}
