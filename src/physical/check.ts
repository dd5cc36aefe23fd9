import { describeConnection, withConnection, type ConnectionSpec } from '../config/index.js';
import { bySeverity, type CheckReport } from '../check/index.js';
import { findProgram, type FoundProgram } from './binaries.js';
import { physicalFindings } from './check-rules.js';
import { inspectDataDirectory } from './data-directory.js';
import { readPhysicalSourceFacts } from './source-facts.js';
import { physicalSlotName, tryReplicationConnection } from './slot.js';
import { messageOf } from '../errors.js';

export interface PhysicalCheckOptions {
  readonly source: ConnectionSpec;
  readonly pgBin: string;
  readonly pgdata: string;
  readonly name: string;
}

/** `check --physical`: can this host take a base backup of the source and run it as a standby. Reads only. */
export async function runPhysicalCheck(options: PhysicalCheckOptions): Promise<CheckReport> {
  const slot = physicalSlotName(options.name);
  const source = await withConnection(options.source, ({ client }) => readPhysicalSourceFacts(client, slot));
  const replicationConnection = await tryReplicationConnection(options.source);
  const program = (name: 'pg_basebackup' | 'postgres') =>
    findProgram(options.pgBin, name).then(
      (found): FoundProgram | string => found,
      (error: unknown) => messageOf(error),
    );
  const programs = { pg_basebackup: await program('pg_basebackup'), postgres: await program('postgres') };
  const state = await inspectDataDirectory(options.pgdata);
  const findings = physicalFindings({
    source,
    slot,
    replicationConnection,
    programs,
    pgdata: { path: options.pgdata, state },
    runningAsRoot: process.getuid?.() === 0,
  }).sort(bySeverity);
  const server = typeof programs.postgres === 'string' ? undefined : programs.postgres;
  return {
    ready: !findings.some((f) => f.severity === 'error'),
    source: { connection: describeConnection(options.source), version: source.version, database: '(every database)' },
    target: {
      connection: `--pgdata ${options.pgdata} (binaries in ${options.pgBin})`,
      version: server?.version ?? 'unknown',
      database: '(every database)',
    },
    findings,
  };
}
