import type { Finding } from '../finding.js';
import type { SourceFacts } from '../facts.js';
import { parameterFix } from '../managed-services.js';

/**
 * A deliberately modest copy rate for the estimate: what two parallel COPY pipes sustain on a
 * small 2-core machine. Real runs are usually faster; a low guess errs towards warning.
 */
const ASSUMED_COPY_BYTES_PER_SECOND = 40 * 1024 * 1024;
/** The slot also retains WAL while indexes are built and the stream catches up. */
const COPY_TO_CAUGHT_UP_FACTOR = 2;
/** Warn before the limit is close, not when it is already reached. */
const SAFETY_MARGIN = 2;

export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 100 || unit === 0 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

function formatSeconds(seconds: number): string {
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function sizeFindings(source: SourceFacts): Finding[] {
  const bytes = source.server.databaseBytes;
  const copySeconds = bytes / ASSUMED_COPY_BYTES_PER_SECOND;
  const rate = source.walBytesPerSecond;
  const retained = rate === undefined ? undefined : rate * copySeconds * COPY_TO_CAUGHT_UP_FACTOR;
  const limitMb = source.maxSlotWalKeepSizeMb;
  const limitBytes = limitMb === undefined || limitMb < 0 ? undefined : limitMb * 1024 * 1024;

  const estimate =
    retained === undefined
      ? 'the WAL write rate is not visible before PostgreSQL 14 (no pg_stat_wal)'
      : `at the average write rate of ${formatBytes(rate ?? 0)}/s that is about ${formatBytes(retained)} of WAL`;
  const findings: Finding[] = [
    {
      id: 'source.size',
      severity: 'info',
      message: `the source database is ${formatBytes(bytes)}; the copy takes roughly ${formatSeconds(copySeconds)} at ${formatBytes(ASSUMED_COPY_BYTES_PER_SECOND)}/s, and the slot retains all WAL written until the target catches up: ${estimate}`,
      why: "WAL retained by the slot stays on the source's disk until pgferry has applied it; the free space of the WAL volume is not visible through SQL",
      fix: "make sure the source's WAL volume has room for it, and watch it during the copy",
    },
  ];
  if (limitBytes !== undefined) {
    const atRisk = retained === undefined ? limitBytes < bytes : retained * SAFETY_MARGIN > limitBytes;
    if (atRisk) {
      findings.push({
        id: 'source.slot-wal-limit',
        severity: 'warning',
        message: `max_slot_wal_keep_size is ${formatBytes(limitBytes)} on the source, ${retained === undefined ? `smaller than the database (${formatBytes(bytes)})` : `less than twice the ${formatBytes(retained)} the slot is expected to retain`}`,
        why: 'when a slot retains more WAL than max_slot_wal_keep_size, the server invalidates it, and the migration must start over from the copy',
        fix:
          parameterFix({ parameter: 'max_slot_wal_keep_size', value: '-1', restart: false }) +
          '\n(or a size well above the estimate, for the duration of the migration)',
      });
    }
  }
  return findings;
}
