import type { Finding } from '../finding.js';
import { listSome } from '../finding.js';
import { capacity } from './replication.js';

/** What `check --all-databases` reads once for the whole source instance. */
export interface InstanceFacts {
  readonly databases: readonly string[];
  readonly maxReplicationSlots: number;
  readonly maxWalSenders: number;
  readonly slotsUsed: number;
  readonly sendersUsed: number;
  /** Selected databases the target instance does not have yet. */
  readonly missingOnTarget: readonly string[];
}

/**
 * `sync --all-databases` holds one slot and one stream (a WAL sender) per database, and each
 * database's copy takes temporary slots for its snapshots beside it, each on a replication
 * session of its own (at least one per database copying at once): the one-database need
 * (rules/replication.ts), times the databases.
 */
export function instanceFindings(facts: InstanceFacts): Finding[] {
  const n = facts.databases.length;
  const findings: Finding[] = [
    ...capacity({
      id: 'instance.replication-slots',
      parameter: 'max_replication_slots',
      what: `replication slots for ${n} databases (${2 * n} needed)`,
      limit: facts.maxReplicationSlots,
      used: facts.slotsUsed,
      needed: 2 * n,
      why: `sync --all-databases creates one logical slot per database (they cannot share one), and each database's copy takes a temporary slot beside it for its snapshots: ${2 * n} for ${n} databases`,
      alternative:
        "or drop slots that are no longer used (SELECT pg_drop_replication_slot('name');), or migrate fewer databases at once with --exclude-database",
    }),
    ...capacity({
      id: 'instance.wal-senders',
      parameter: 'max_wal_senders',
      what: `WAL senders for ${n} databases (${2 * n} needed)`,
      limit: facts.maxWalSenders,
      used: facts.sendersUsed,
      needed: 2 * n,
      why: `each database's change stream is a replication connection served by a WAL sender, and each database's copy holds one more while it takes its snapshots: ${2 * n} for ${n} databases`,
    }),
  ];
  if (facts.missingOnTarget.length > 0) {
    findings.push({
      id: 'instance.target-databases',
      severity: 'info',
      message: `the target instance has no database ${listSome(facts.missingOnTarget.map((d) => `"${d}"`))} yet: checked as the new, empty database sync --all-databases creates`,
      why: 'each database is migrated into the database of the same name on the target; sync and migrate --all-databases create it from the source (owner, encoding, locale, settings) before syncing',
      fix: 'nothing to do; pgferry globals --all-databases creates them ahead if you prefer',
    });
  }
  return findings;
}
