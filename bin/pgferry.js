#!/usr/bin/env node
// The compiled CLI lives in dist/ (built by `npm ci` through the prepare script).
import { runCli } from '../dist/src/cli/index.js';

process.exitCode = await runCli(process.argv);
