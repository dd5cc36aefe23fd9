import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { check, checkCommand } from './check.js';
import { clone, cloneCommand } from './clone.js';
import { EXIT } from './exit-codes.js';
import { status, statusCommand } from './status.js';
import { sync, syncCommand } from './sync.js';
import { verify, verifyCommand } from './verify.js';
import { printErr, printOut, reportError } from './terminal.js';

function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return manifest.version;
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

  program.addCommand(
    checkCommand()
      .exitOverride()
      .configureOutput(OUTPUT)
      .configureHelp({ showGlobalOptions: true })
      .action(async (flags) => {
        exitCode = await check({ ...flags, debug });
      }),
  );

  program.addCommand(
    cloneCommand()
      .exitOverride()
      .configureOutput(OUTPUT)
      .configureHelp({ showGlobalOptions: true })
      .action(async (flags) => {
        exitCode = await clone({ ...flags, debug });
      }),
  );

  program.addCommand(
    syncCommand()
      .exitOverride()
      .configureOutput(OUTPUT)
      .configureHelp({ showGlobalOptions: true })
      .action(async (flags) => {
        exitCode = await sync({ ...flags, debug });
      }),
  );

  program.addCommand(
    statusCommand()
      .exitOverride()
      .configureOutput(OUTPUT)
      .configureHelp({ showGlobalOptions: true })
      .action(async (flags) => {
        exitCode = await status({ ...flags, debug });
      }),
  );

  program.addCommand(
    verifyCommand()
      .exitOverride()
      .configureOutput(OUTPUT)
      .configureHelp({ showGlobalOptions: true })
      .action(async (flags) => {
        exitCode = await verify({ ...flags, debug });
      }),
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
