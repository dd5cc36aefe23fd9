import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { runWatchdog } from '../pgbouncer/index.js';
import { check, checkCommand } from './check.js';
import { cleanup, cleanupCommand } from './cleanup.js';
import { clone, cloneCommand } from './clone.js';
import { cutover, cutoverCommand } from './cutover.js';
import { globals, globalsCommand } from './globals.js';
import { migrate, migrateCommand } from './migrate.js';
import { EXIT } from './exit-codes.js';
import { status, statusCommand } from './status.js';
import { sync, syncCommand } from './sync.js';
import { verify, verifyCommand } from './verify.js';
import { printErr, printOut, reportError } from './terminal.js';

/** Set by scripts/bundle.mjs: inside dist/pgferry.mjs the relative path below no longer leads to package.json. */
declare const PGFERRY_VERSION: string | undefined;

function packageVersion(): string {
  if (typeof PGFERRY_VERSION === 'string') return PGFERRY_VERSION;
  // Unbundled, this file is dist/src/cli/index.js.
  const manifest: unknown = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'));
  return typeof manifest === 'object' && manifest !== null && 'version' in manifest && typeof manifest.version === 'string'
    ? manifest.version
    : 'unknown';
}

/** Commander's own messages (unknown flag, missing value) become one pgferry line with the way out. */
const OUTPUT = {
  writeOut: printOut,
  writeErr: printErr,
  outputError: (message: string, write: (text: string) => void) =>
    write(`pgferry: ${message.replace(/^error: /, '').trimEnd()} — run pgferry --help (or pgferry <command> --help) for the options\n`),
};

/** What `pgferry --help` says after the commands: the modes that are options, and where to read on. */
const OVERVIEW_FOOTER = `
Physical (same major version, the whole server):
  check, sync, status, cutover and cleanup with --physical

The way back: after a cut-over, sync and cutover with --source and --target
swapped make the old primary follow the new one, and return to it.

Connections: --source and --target, or PGFERRY_SOURCE and PGFERRY_TARGET
(passwords from PGPASSWORD or ~/.pgpass). Documentation: docs/README.md.

Example:
  pgferry check --source postgres://old-db/shop --target postgres://new-db/shop`;

/** Runs the pgferry command line and returns the exit code; never throws, never calls process.exit. */
export async function runCli(argv: readonly string[]): Promise<number> {
  let exitCode: number = EXIT.ok;
  const debug = argv.includes('--debug');
  const program = new Command('pgferry')
    .description('Move a live PostgreSQL database to another server with seconds of downtime.')
    .usage('<command> [options]')
    .version(packageVersion())
    .option('--debug', 'show stack traces and debug logs')
    .exitOverride()
    .configureOutput(OUTPUT)
    .configureHelp({ subcommandTerm: (command) => command.name() });

  // Each command parses its own flags and returns its exit code; errors are reported below.
  const add = <F extends object>(command: Command, run: (flags: F & { debug: boolean }) => Promise<number>): void => {
    program.addCommand(
      command
        .exitOverride()
        .configureOutput(OUTPUT)
        .configureHelp({ showGlobalOptions: true })
        .action(async (flags: F) => {
          exitCode = await run({ ...flags, debug });
        }),
    );
  };
  // The overview reads in the order a migration runs: one short line per command (its own --help says the rest).
  program.commandsGroup('Start here:');
  add(checkCommand().summary('can these databases be migrated? what to fix first'), check);
  add(migrateCommand().summary('all in one: copy, stream, cut over once caught up'), migrate);
  program.helpCommand('help [command]', "a command's options (or: pgferry <command> --help)");
  program.commandsGroup('Step by step:');
  add(globalsCommand().summary('roles with their passwords, databases, tablespaces'), globals);
  add(cloneCommand().summary('copy the schema and rows once, at one snapshot'), clone);
  add(syncCommand().summary('copy, then stream every change until stopped'), sync);
  add(statusCommand().summary('where a migration stands: phase, copy, lag'), status);
  add(cutoverCommand().summary('freeze writes, apply the last changes, switch'), cutover);
  program.commandsGroup('After:');
  add(verifyCommand().summary('compare both sides by content, name rows that differ'), verify);
  add(cleanupCommand().summary("remove the slot, publication and pgferry's state"), cleanup);
  program.addHelpText('after', OVERVIEW_FOOTER);
  // Started by a cut-over through PgBouncer, never by hand (pgbouncer/watchdog.ts).
  program.addCommand(
    new Command('pgbouncer-watchdog').exitOverride().action(async () => {
      exitCode = await runWatchdog(process.stdin);
    }),
    { hidden: true },
  );

  try {
    await program.parseAsync([...argv]);
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version exit 0; help shown because no command was given is bad usage.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    return reportError(error, debug);
  }
}
