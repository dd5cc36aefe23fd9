import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { runWatchdog } from '../pgbouncer/index.js';
import { check, checkCommand } from './check.js';
import { cleanup, cleanupCommand } from './cleanup.js';
import { clone, cloneCommand } from './clone.js';
import { cutover, cutoverCommand } from './cutover.js';
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

/** Runs the pgferry command line and returns the exit code; never throws, never calls process.exit. */
export async function runCli(argv: readonly string[]): Promise<number> {
  let exitCode: number = EXIT.ok;
  const debug = argv.includes('--debug');
  const program = new Command('pgferry')
    .description('Move a live PostgreSQL database to another server with seconds of downtime.')
    .version(packageVersion())
    .option('--debug', 'show stack traces and debug logs')
    .exitOverride()
    .configureOutput(OUTPUT);

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
  add(checkCommand(), check);
  add(cloneCommand(), clone);
  add(syncCommand(), sync);
  add(statusCommand(), status);
  add(verifyCommand(), verify);
  add(cutoverCommand(), cutover);
  add(migrateCommand(), migrate);
  add(cleanupCommand(), cleanup);
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
