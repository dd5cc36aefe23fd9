/**
 * Runs every compiled *.test.js under dist/test with node's test runner. Files run two at a
 * time (the machine has two cores); tests inside a file run in order and share its clusters.
 * Pass file-name fragments to run only matching files: npm test -- check ssl
 */
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sweepAbandonedClusters } from './harness/index.js';

const root = dirname(fileURLToPath(import.meta.url));

function findTests(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return findTests(path);
    return name.endsWith('.test.js') ? [path] : [];
  });
}

const filters = process.argv.slice(2);
const files = findTests(root)
  .filter((file) => filters.length === 0 || filters.some((f) => relative(root, file).includes(f)))
  .sort();
if (files.length === 0) {
  console.error(`no test file matches ${filters.join(', ') || '*.test.js'} under ${root}`);
  process.exit(1);
}

sweepAbandonedClusters();
const child = spawn(process.execPath, ['--test', '--test-concurrency=2', '--test-reporter=spec', ...files], { stdio: 'inherit' });
child.on('close', (code, signal) => {
  sweepAbandonedClusters();
  process.exit(code ?? (signal ? 1 : 0));
});
