import { runCheck, runInstanceCheck, type CheckOptions, type CheckReport, type Finding } from '../check/index.js';
import type { ConnectionSpec } from '../config/index.js';
import { carryGlobals, type DatabaseFilter, type GlobalsReport } from '../instance/index.js';
import { listSome } from '../check/index.js';
import { PgferryError } from '../errors.js';
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
  settings: Omit<CheckOptions, 'source' | 'target'> & { readonly tablespaceLocations: readonly string[] },
  json: boolean,
): Promise<number> {
  const { tablespaceLocations: _locations, ...checks } = settings;
  const pairs = await databasePairs(source, target, filter);
  const missing = await missingOnTarget(
    target,
    pairs.map((p) => p.database),
  );
  const instance = await runInstanceCheck({ source, target, databases: pairs.map((p) => p.database), missingOnTarget: missing });
  // What carrying the globals would do, and what it would refuse (a locale, a tablespace without a location), said now.
  const globals = await carryGlobals(
    source,
    target,
    pairs.map((p) => p.database),
    { dryRun: true, tablespaceLocations: settings.tablespaceLocations },
  ).then(globalsFindings, (error: unknown) => [globalsRefusal(error)]);
  const findings = [...instance, ...globals];
  // A database the target lacks is checked as the new one sync makes: the instance's facts through the database connected to.
  const reports = await eachDatabase(pairs, (pair) =>
    missing.includes(pair.database)
      ? runCheck({ ...checks, source: pair.source, target, targetToBeCreated: true })
      : runCheck({ ...checks, source: pair.source, target: pair.target }),
  );
  const ready = !findings.some((f) => f.severity === 'error') && reports.every(({ result }) => result.ready);
  printOut(json ? `${JSON.stringify(asJson(ready, findings, reports), null, 2)}\n` : formatAll(ready, findings, reports));
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

/** What `sync --all-databases` would carry first, as findings: roles whose passwords cannot travel, warnings. */
function globalsFindings(report: GlobalsReport): Finding[] {
  const findings: Finding[] = [];
  if (report.created.length > 0)
    findings.push({
      id: 'instance.globals',
      severity: 'info',
      message: `sync --all-databases will first create on the target: ${listSome(report.created)}`,
      why: "the instance's roles, tablespaces and databases are not in any database: pgferry carries them first, as pgferry globals does",
      fix: 'nothing to do; pgferry globals --all-databases --dry-run lists them in full',
    });
  if (report.passwordsToSet.length > 0)
    findings.push({
      id: 'instance.passwords',
      severity: 'warning',
      message: `the passwords of ${listSome(report.passwordsToSet)} cannot be read on the source (pg_authid): they will not be carried`,
      why: 'password verifiers are readable by a superuser only (managed services hide them)',
      fix: 'connect to the source as a superuser, or set these passwords on the target by hand before the cut-over',
    });
  for (const warning of report.warnings)
    findings.push({
      id: 'instance.globals-warning',
      severity: 'warning',
      message: warning,
      why: 'carrying the global objects',
      fix: 'see the message',
    });
  return findings;
}

function globalsRefusal(error: unknown): Finding {
  if (!(error instanceof PgferryError) || error.kind !== 'usage') throw error;
  return {
    id: 'instance.globals-refused',
    severity: 'error',
    message: error.message,
    why: "the target instance cannot receive the source's global objects as they are",
    fix: error.fix ?? 'see the message',
  };
}
