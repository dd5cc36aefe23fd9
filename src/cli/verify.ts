import { Command } from 'commander';
import { resolveConnection } from '../config/index.js';
import { PgferryError, usageError } from '../errors.js';
import { createLogger } from '../log/index.js';
import { verify as runVerify, SCHEMA_DIFFERENCE_WORDS, type Difference, type VerifyMode, type VerifyReport } from '../verify/index.js';
import { DEFAULT_JOBS } from '../plumbing/index.js';
import { EXIT } from './exit-codes.js';
import {
  addConnectionOptions,
  addFilterOptions,
  addInstanceOptions,
  filterFrom,
  instanceFrom,
  type ConnectionFlags,
  type FilterFlags,
  type InstanceFlags,
} from './options.js';
import { databasePairs, eachDatabase } from './all-databases.js';
import { printErr, printOut } from './terminal.js';

interface VerifyFlags extends ConnectionFlags, FilterFlags, InstanceFlags {
  json?: boolean;
  debug?: boolean;
  mode: string;
  jobs: string;
  maxDifferences: string;
  recheck?: boolean;
}

/** Differing rows shown per table in the human report; --json carries them all. */
const SHOWN_PER_TABLE = 10;
/** The step that sets a sequence behind on a target that follows its source, in words. */
const SET_AT = { cutover: 'cut-over', return: 'return' } as const;

export function verifyCommand(): Command {
  const command = new Command('verify')
    .description('compare the target with the source by content, table by table, and name the rows that differ')
    .option('--mode <mode>', 'full: every row by content, sequences and schema; counts: exact row counts and sequences only', 'full')
    .option('--jobs <n>', 'tables compared at once', String(DEFAULT_JOBS))
    .option('--max-differences <n>', 'rows named per table', '100')
    .option('--no-recheck', 'while pgferry sync streams, report differences as first seen instead of rechecking them')
    .option('--json', 'print the report as JSON');
  addConnectionOptions(command);
  addFilterOptions(command);
  addInstanceOptions(command);
  return command;
}

export async function verify(flags: VerifyFlags): Promise<number> {
  const mode = parseMode(flags.mode);
  const jobs = wholeNumber(flags.jobs, '--jobs', 1, 64);
  const maxDifferences = wholeNumber(flags.maxDifferences, '--max-differences', 0, 1_000_000);
  const instance = instanceFrom(flags);
  const source = await resolveConnection('source', flags.source);
  const target = await resolveConnection('target', flags.target);
  const logger = createLogger({ level: flags.debug ? 'debug' : 'warn' });
  const stop = new AbortController();
  const onSignal = () =>
    stop.abort(
      new PgferryError('query', 'verify was interrupted before it finished', { fix: 'run it again; nothing was written to either side' }),
    );
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const settings = { filter: filterFrom(flags), mode, jobs, maxDifferences, recheckWhileSyncing: flags.recheck !== false, logger };
  try {
    if (instance) {
      const reports = await eachDatabase(await databasePairs(source, target, instance), (pair) =>
        runVerify({ ...settings, source: pair.source, target: pair.target, signal: stop.signal }),
      );
      printEveryDatabase(reports, flags.json === true);
      // The worst of the databases' answers: a difference anywhere, else a table not compared anywhere.
      const codes = reports.map(({ result }) => exitCode(result));
      return codes.includes(EXIT.different) ? EXIT.different : (codes.find((code) => code !== EXIT.ok) ?? EXIT.ok);
    }
    const report = await runVerify({ ...settings, source, target, signal: stop.signal });
    if (flags.json) printOut(`${JSON.stringify(report, null, 2)}\n`);
    else printOut(formatReport(report));
    printUncompared(report, '');
    return exitCode(report);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** `verify --all-databases`: one report, every database's in turn (in --json, under its name). */
function printEveryDatabase(reports: ReadonlyArray<{ readonly database: string; readonly result: VerifyReport }>, json: boolean): void {
  if (json) {
    const databases = reports.map(({ database, result }) => ({ database, ...result }));
    printOut(`${JSON.stringify({ identical: reports.every(({ result }) => result.identical), databases }, null, 2)}\n`);
  } else {
    printOut(reports.map(({ database, result }) => `== database ${database}\n${formatReport(result)}`).join('\n'));
    const differ = reports.filter(({ result }) => !result.identical).map(({ database }) => database);
    printOut(
      `\n${differ.length === 0 ? `Identical: all ${reports.length} databases.` : `Different: ${differ.length} of ${reports.length} databases (${differ.join(', ')}).`}\n`,
    );
  }
  for (const { database, result } of reports) printUncompared(result, `database ${database}: `);
}

function printUncompared(report: VerifyReport, where: string): void {
  for (const t of report.tables) if (t.error) printErr(`pgferry: ${where}${t.name} could not be compared: ${t.error}\n`);
}

/** 0 identical; 4 a difference was found; 1 nothing differs but some table could not be compared. */
function exitCode(report: VerifyReport): number {
  if (report.identical) return EXIT.ok;
  const found =
    report.tables.some((t) => t.status === 'different' || t.status === 'missing-on-target') ||
    report.sequences.some((s) => (s.status === 'behind' && s.setAt === undefined) || s.status === 'missing-on-target') ||
    report.schema.length > 0;
  return found ? EXIT.different : EXIT.failed;
}

function parseMode(text: string): VerifyMode {
  if (text === 'full' || text === 'counts') return text;
  throw usageError(`--mode "${text}" is not a verify mode`, 'use --mode full (content) or --mode counts (row counts only)');
}

function wholeNumber(text: string, flag: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw usageError(`${flag} "${text}" is not a whole number from ${min} to ${max}`);
  return n;
}

export function formatReport(report: VerifyReport): string {
  const lines: string[] = [];
  const width = Math.max(5, ...report.tables.map((t) => t.name.length));
  lines.push(
    `${'TABLE'.padEnd(width)}  ${'SOURCE ROWS'.padStart(12)}  ${'TARGET ROWS'.padStart(12)}  ${'STATUS'.padEnd(17)}  ${'SECONDS'.padStart(8)}`,
  );
  for (const t of report.tables) {
    lines.push(
      `${t.name.padEnd(width)}  ${String(t.sourceRows).padStart(12)}  ${String(t.targetRows).padStart(12)}  ${t.status.padEnd(17)}  ${t.seconds.toFixed(2).padStart(8)}`,
    );
  }
  const differing = report.tables.filter((t) => t.differences.length > 0);
  if (differing.length > 0) lines.push('', 'Differing rows:');
  for (const t of differing) {
    for (const d of t.differences.slice(0, SHOWN_PER_TABLE)) lines.push(`  ${t.name}  ${describeDifference(d)}`);
    const more = t.differences.length - SHOWN_PER_TABLE + (t.truncated ? 1 : 0);
    if (more > 0)
      lines.push(
        `  ${t.name}  … ${t.truncated ? 'and more' : `and ${more} more`} (--json lists ${t.truncated ? 'up to --max-differences' : 'them all'})`,
      );
  }
  const sequences = report.sequences.filter((s) => s.status !== 'identical');
  if (sequences.length > 0) lines.push('', 'Sequences:');
  for (const s of sequences)
    lines.push(
      `  ${s.name}  ${s.status}${s.setAt ? `, set at the ${SET_AT[s.setAt]}` : ''}  (source ${s.source ?? 'never called'}, target ${s.target ?? (s.status === 'missing-on-target' ? 'none' : 'never called')})`,
    );
  if (report.schema.length > 0) lines.push('', 'Schema:');
  for (const s of report.schema) lines.push(`  ${SCHEMA_DIFFERENCE_WORDS[s.kind]}: ${s.object}`);
  for (const note of report.notes) lines.push('', `note: ${note}`);
  lines.push('', verdict(report));
  return `${lines.join('\n')}\n`;
}

function describeDifference(d: Difference): string {
  const values = d.key === null ? [] : Object.entries(d.key);
  const key =
    d.key === null
      ? '(row)'
      : values.length === 0
        ? '() (a row of a table without columns)'
        : values.map(([k, v]) => `${k}=${v === null ? 'NULL' : JSON.stringify(v)}`).join(', ');
  switch (d.kind) {
    case 'missing':
      return `missing on the target: ${key}`;
    case 'extra':
      return `only on the target: ${key}`;
    case 'changed':
      return `changed: ${key}${d.columns && d.columns.length > 0 ? ` (${d.columns.join(', ')})` : ''}`;
  }
}

function verdict(report: VerifyReport): string {
  const rows = report.tables.reduce((n, t) => n + t.sourceRows, 0);
  const what = report.mode === 'full' ? 'by content' : 'by row count';
  if (report.identical) {
    const setAt = report.sequences.find((s) => s.setAt !== undefined)?.setAt;
    const deferred = report.sequences.filter((s) => s.setAt !== undefined).length;
    const sequences = `${report.sequences.length} sequences${setAt ? ` (${deferred} set at the ${SET_AT[setAt]})` : ''}`;
    return `Identical: ${report.tables.length} tables (${rows} rows) ${what}, ${sequences}${report.mode === 'full' ? ', schema' : ''} (${report.seconds.toFixed(2)} s).`;
  }
  const tables = report.tables.filter((t) => t.status !== 'identical').length;
  const sequences = report.sequences.filter(
    (s) => (s.status === 'behind' && s.setAt === undefined) || s.status === 'missing-on-target',
  ).length;
  return `Different: ${tables} of ${report.tables.length} tables, ${sequences} sequences, ${report.schema.length} schema objects differ (${report.seconds.toFixed(2)} s).`;
}
