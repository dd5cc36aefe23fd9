import { readSettings } from '../catalog/index.js';
import { withConnection, type ConnectionSpec } from '../config/index.js';
import { bySeverity, type Finding } from './finding.js';
import { instanceFindings } from './rules/instance.js';

export interface InstanceCheckOptions {
  /** The source and target instances, reached through the databases the user named. */
  readonly source: ConnectionSpec;
  readonly target: ConnectionSpec;
  readonly databases: readonly string[];
  readonly missingOnTarget: readonly string[];
}

/**
 * What `check --all-databases` says of the instances as a whole: room on the source for a slot
 * and a stream per database (each database's own check sees only its own need). Reaching the
 * target instance here is what says it can be reached at all, databases missing there or not.
 */
export async function runInstanceCheck(options: InstanceCheckOptions): Promise<Finding[]> {
  const usage = await withConnection(options.source, async ({ client }) => {
    const settings = await readSettings(client, ['max_replication_slots', 'max_wal_senders']);
    const { rows } = await client.query<{ slots: number; senders: number }>(
      `SELECT (SELECT count(*) FROM pg_replication_slots)::int AS slots, (SELECT count(*) FROM pg_stat_replication)::int AS senders`,
    );
    return { settings, counts: rows[0]! };
  });
  await withConnection(options.target, ({ client }) => client.query('SELECT 1'));
  return instanceFindings({
    databases: options.databases,
    maxReplicationSlots: Number(usage.settings.get('max_replication_slots') ?? 0),
    maxWalSenders: Number(usage.settings.get('max_wal_senders') ?? 0),
    slotsUsed: usage.counts.slots,
    sendersUsed: usage.counts.senders,
    missingOnTarget: options.missingOnTarget,
  }).sort(bySeverity);
}
