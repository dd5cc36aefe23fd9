import { runCheck, runInstanceCheck, type CheckOptions, type CheckReport, type Finding } from '../check/index.js';
import type { ConnectionSpec } from '../config/index.js';
import type { DatabaseFilter } from '../instance/index.js';
import { databasePairs, eachDatabase, missingOnTarget } from './all-databases.js';
import { formatCheckReport, formatFindings } from './check-report.js';
import { EXIT } from './exit-codes.js';
import { printOut } from './terminal.js';

/**
 * `check --all-databases`: the instance first (room for a slot and a stream per database, the
 * target reachable), then each database's own check, labelled; a database the target lacks is
 * named in the instance's findings and its own check skipped (it reads the target database).
 */
export async function checkEveryDatabase(
  source: ConnectionSpec,
  target: ConnectionSpec,
  filter: DatabaseFilter,
  settings: Omit<CheckOptions, 'source' | 'target'>,
  json: boolean,
): Promise<number> {
  const pairs = await databasePairs(source, target, filter);
  const missing = await missingOnTarget(
    target,
    pairs.map((p) => p.database),
  );
  const instance = await runInstanceCheck({ source, target, databases: pairs.map((p) => p.database), missingOnTarget: missing });
  const reports = await eachDatabase(
    pairs.filter((p) => !missing.includes(p.database)),
    (pair) => runCheck({ ...settings, source: pair.source, target: pair.target }),
  );
  const ready = !instance.some((f) => f.severity === 'error') && missing.length === 0 && reports.every(({ result }) => result.ready);
  printOut(json ? `${JSON.stringify(asJson(ready, instance, reports), null, 2)}\n` : formatAll(ready, instance, reports));
  return ready ? EXIT.ok : EXIT.blocked;
}

function asJson(ready: boolean, instance: readonly Finding[], reports: ReadonlyArray<{ database: string; result: CheckReport }>) {
  return { ready, instance: { findings: instance }, databases: reports.map(({ database, result }) => ({ database, ...result })) };
}

function formatAll(
  ready: boolean,
  instance: readonly Finding[],
  reports: ReadonlyArray<{ database: string; result: CheckReport }>,
): string {
  const sections = [
    `== instance (${reports.length === 1 ? '1 database checked' : `${reports.length} databases checked`})\n${instance.length === 0 ? 'no finding: room for every database\n' : formatFindings(instance)}`,
    ...reports.map(({ database, result }) => `== database ${database}\n${formatCheckReport(result)}`),
  ];
  const verdict = ready
    ? 'every database: ready to migrate.'
    : 'not ready — fix the errors above (instance and databases) and run pgferry check --all-databases again.';
  return `${sections.join('\n')}\n${verdict}\n`;
}
