#!/usr/bin/env node
// The compiled CLI lives in dist/ (built by `npm ci` through the prepare script).
import { runCli } from '../dist/src/cli/index.js';

const code = await runCli(process.argv);
// Exit as soon as the output is flushed: a DNS lookup that outlived connect_timeout, or any
// other abandoned socket, must not hold the process after the answer has been given.
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
