/**
 * The pgferry executable: bin/pgferry.js loads this file bundled into dist/pgferry.mjs
 * (scripts/bundle.mjs), so the command line starts without resolving a hundred modules.
 */
import { hidePasswordsFromProcessList } from '../config/index.js';
import { runCli } from './index.js';

// First thing: a password given in --source or --target is then masked in the process list.
// Someone at a terminal is also told that their shell's history still holds it (scripts keep
// stderr for the one line that matters to them).
if (hidePasswordsFromProcessList(process.argv) && process.stderr.isTTY) {
  process.stderr.write(
    'pgferry: warning: a password was given on the command line: it is masked in the process list now, but your shell history keeps it; ' +
      'prefer PGPASSWORD, a password file (~/.pgpass) or PGFERRY_SOURCE / PGFERRY_TARGET\n',
  );
}
const code = await runCli(process.argv);
// Exit as soon as the output is flushed: a DNS lookup that outlived connect_timeout, or any
// other abandoned socket, must not hold the process after the answer has been given.
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
