/**
 * The pgferry executable: bin/pgferry.js loads this file bundled into dist/pgferry.mjs
 * (scripts/bundle.mjs), so the command line starts without resolving a hundred modules.
 */
import { runCli } from './index.js';

const code = await runCli(process.argv);
// Exit as soon as the output is flushed: a DNS lookup that outlived connect_timeout, or any
// other abandoned socket, must not hold the process after the answer has been given.
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
