/**
 * `npm run demo`: the whole migration between two throwaway PostgreSQL servers on this machine
 * (17 as the source, 18 as the target). A small shop database with an application stand-in
 * writing to it all along: pgferry check finds what blocks the migration, then finds it ready
 * after the printed fix; pgferry sync clones it and streams its changes while the lag shrinks;
 * pgferry cutover freezes writes for well under a second; pgferry verify proves the two equal;
 * the writer carries on against the target; pgferry sync with the sides swapped brings the old
 * primary up to date through the way back the cut-over prepared, and pgferry cleanup removes
 * what is left.
 */
import { readFileSync } from 'node:fs';
import { runPgferry, spawnPgferry, startClusters, startWriter, WRITER_SCHEMA_SQL } from '../test/harness/index.js';

const sampleSql = readFileSync(new URL('../../demo/sample.sql', import.meta.url), 'utf8');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function banner(text: string): void {
  const bold = process.stdout.isTTY ? (t: string) => `\x1b[1m${t}\x1b[0m` : (t: string) => t;
  process.stdout.write(`\n${bold(`== ${text}`)}\n\n`);
}

function show(text: string): void {
  process.stdout.write(text.endsWith('\n') || text === '' ? text : `${text}\n`);
}

/** Sync's structured log, one short line per interesting event. */
function syncLines(log: string, from: number): { lines: string[]; next: number } {
  const chunk = log.slice(from);
  const end = chunk.lastIndexOf('\n') + 1;
  const lines: string[] = [];
  for (const line of chunk.slice(0, end).split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as Record<string, unknown>;
    const msg = String(entry.msg);
    if (msg === 'unit copied') continue;
    const fields = ['phase', 'table', 'rows', 'consistentLsn', 'appliedLsn', 'lagBytes', 'lagSeconds', 'transactionsPerSecond', 'cause']
      .filter((k) => entry[k] !== undefined)
      .map((k) => `${k}=${String(entry[k])}`);
    lines.push(`  [sync] ${msg}${fields.length ? `  ${fields.join(' ')}` : ''}`);
  }
  return { lines, next: from + end };
}

/** The last words of a command's output that say how it ended (its verdict line). */
function lastLine(text: string): string {
  return (
    text
      .trim()
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith('{'))
      .pop() ?? ''
  );
}

/** What the demo found, one line per step: printed last, after the servers are stopped. */
interface Outcome {
  readonly failures: string[];
  readonly result: Array<[string, string]>;
}

async function main(): Promise<Outcome> {
  banner('Starting PostgreSQL 17 (source) and PostgreSQL 18 (target)');
  const [source, target] = await startClusters([{ version: 17 }, { version: 18 }]);
  const failures: string[] = [];
  const result: Array<[string, string]> = [];
  const expect = (ok: boolean, what: string) => {
    if (!ok) failures.push(what);
  };
  try {
    await source.sql('postgres', 'CREATE DATABASE shop');
    await target.sql('postgres', 'CREATE DATABASE shop');
    await source.sql('shop', sampleSql);
    await source.sql('shop', WRITER_SCHEMA_SQL);
    const sourceUrl = source.url('shop');
    const targetUrl = target.url('shop');
    const both = ['--source', sourceUrl, '--target', targetUrl];
    show(`source ${sourceUrl.replace(/:[^:@/]+@/, ':******@')}\ntarget ${targetUrl.replace(/:[^:@/]+@/, ':******@')}`);

    banner('pgferry check --source … --target …');
    const first = await runPgferry(['check', ...both]);
    show(first.stdout + first.stderr);
    show(`(exit status ${first.code}: ${first.code === 3 ? 'something blocks the migration' : 'see above'})`);
    expect(first.code === 3, 'the first check should find the keyless audit table');

    banner('Applying the fix check printed: ALTER TABLE public.audit_log REPLICA IDENTITY FULL');
    await source.sql('shop', 'ALTER TABLE public.audit_log REPLICA IDENTITY FULL');
    const second = await runPgferry(['check', ...both]);
    show(second.stdout + second.stderr);
    show(`(exit status ${second.code}${second.code === 0 ? ': ready to migrate' : ''})`);
    expect(second.code === 0, 'the second check should find the databases ready');
    result.push(['check', `blocked on a table without a key (exit ${first.code}), ready after the fix it printed (exit ${second.code})`]);

    banner('The application starts writing to the source, and keeps writing from here on');
    const writer = startWriter(sourceUrl, { pauseMs: 2 });
    await writer.waitForCommits(100, 'source');
    show(`${writer.committedCount} transactions committed on the source so far (insert with a sequence id, update, some deletes)`);

    banner('pgferry sync --source … --target …   (slot + snapshot, clone, then streaming; left running)');
    const sync = spawnPgferry(['sync', ...both]);
    let read = 0;
    const deadline = Date.now() + 60_000;
    while (!/"msg":"streaming","migration"|"msg":"streaming"/.test(sync.output()) && Date.now() < deadline && sync.child.exitCode === null)
      await sleep(200);
    await sleep(2500);
    ({ next: read } = ((r) => (show(r.lines.join('\n')), r))(syncLines(sync.output(), read)));

    banner('pgferry status --target …   (read from the target, while sync runs)');
    for (let i = 0; i < 2; i++) {
      const status = await runPgferry(['status', '--target', targetUrl]);
      show(status.stdout);
      await sleep(1500);
    }

    banner('pgferry cutover --source … --target …   (lag under 1 s, freeze, fence, sequences, counts, stop sync)');
    const cut = await runPgferry(['cutover', ...both], {}, 120_000);
    show(cut.stdout);
    if (cut.code !== 0) show(cut.stderr);
    expect(cut.code === 0, 'the cut-over should succeed');
    const syncExit = await sync.exited();
    expect(syncExit === 0, 'sync should stop cleanly when the cut-over stops it');
    const frozen = /Writes were frozen for (\d+) ms/.exec(cut.stdout)?.[1];
    result.push(['sync', `copied the database under the writer and streamed its changes; stopped by the cut-over (exit ${syncExit})`]);
    result.push([
      'cutover',
      cut.code === 0 ? `writes frozen for ${frozen ?? '?'} ms; sequences set, row counts verified` : `failed (exit ${cut.code})`,
    ]);
    ({ next: read } = ((r) => (show(r.lines.join('\n')), r))(syncLines(sync.output(), read)));

    banner('pgferry verify --source … --target …   (every row by content, with the source frozen)');
    const verified = await runPgferry(['verify', ...both], {}, 120_000);
    show(verified.stdout + verified.stderr);
    expect(verified.code === 0, 'verify should find the target identical');
    result.push(['verify', lastLine(verified.stdout)]);

    banner('The application is pointed at the target and carries on');
    writer.switchTo(targetUrl);
    await writer.waitForCommits(100, 'target');
    const report = await writer.stop();
    const onTarget = await target.sql('shop', `SELECT count(*)::int AS n FROM ledger WHERE id = ANY($1::bigint[])`, [
      report.committed.flatMap((c) => c.ledgerIds),
    ]);
    const committedIds = report.committed.flatMap((c) => c.ledgerIds).length;
    show(
      `committed on the source: ${report.committed.filter((c) => c.side === 'source').length} transactions; on the target since: ${report.committed.filter((c) => c.side === 'target').length}`,
    );
    show(
      `the application went ${report.switchGapMs?.toFixed(0) ?? '?'} ms without a commit: the freeze, plus the verify above, run before it was pointed at the target`,
    );
    show(`every ledger row it saw committed is on the target: ${onTarget.rows[0].n} of ${committedIds}`);
    show(
      `errors other than the freeze (a duplicate key would show here): ${report.unexpectedErrors.length === 0 ? 'none' : report.unexpectedErrors.join('; ')}`,
    );
    expect(onTarget.rows[0].n === committedIds && report.unexpectedErrors.length === 0, 'no committed write may be lost');
    result.push([
      'application',
      `${onTarget.rows[0].n} of ${committedIds} committed ledger rows on the target, ${report.unexpectedErrors.length === 0 ? 'no duplicate id' : `${report.unexpectedErrors.length} unexpected errors`}`,
    ]);

    banner('pgferry sync --source <target> --target <source> --until-caught-up   (the way back: the old primary follows, no copy)');
    const swapped = ['--source', targetUrl, '--target', sourceUrl];
    const back = await runPgferry(['sync', ...swapped, '--until-caught-up'], {}, 120_000);
    show(
      back.stdout +
        back.stderr
          .split('\n')
          .filter((l) => /"msg":"(continuing|caught up)/.test(l))
          .join('\n'),
    );
    expect(back.code === 0, 'the way back should catch up');
    const backStatus = await runPgferry(['status', '--target', sourceUrl]);
    show(backStatus.stdout.split('\n').slice(0, 3).join('\n'));
    // The old primary follows: its sequences are set at the return, which verify says, and they are no difference.
    const backVerified = await runPgferry(['verify', ...swapped], {}, 120_000);
    show(backVerified.stdout);
    expect(
      backVerified.code === 0 && /set at the return/.test(backVerified.stdout),
      'the old primary should hold every write the application made on the new one, its sequences set at the return',
    );
    result.push(['way back', `the old primary follows the new one: ${lastLine(backVerified.stdout)}`]);

    banner('pgferry cleanup --source … --target … --unfreeze-source --force   (gives the way back up too)');
    const cleaned = await runPgferry(['cleanup', ...both, '--unfreeze-source', '--force']);
    show(cleaned.stdout + cleaned.stderr);
    expect(cleaned.code === 0, 'cleanup should succeed');
    result.push([
      'cleanup',
      cleaned.code === 0 ? 'slots, publications, capture and state removed from both sides' : `failed (exit ${cleaned.code})`,
    ]);
    return { failures, result };
  } finally {
    banner('Stopping both servers');
    await Promise.all([source.stop(), target.stop()]);
  }
}

const outcome = await main();
banner('The result');
const width = Math.max(...outcome.result.map(([step]) => step.length));
show(outcome.result.map(([step, what]) => `  ${step.padEnd(width)}  ${what}`).join('\n'));
show(
  outcome.failures.length === 0
    ? '\nThe database moved from PostgreSQL 17 to 18 under a live writer, and no committed write was lost. Next: README.md, then docs/README.md.'
    : `\nDemo FAILED: ${outcome.failures.join('; ')}`,
);
process.exitCode = outcome.failures.length === 0 ? 0 : 1;
