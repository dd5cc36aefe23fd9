/**
 * The README's first quick-start line, run as it is written (`npm run demo`, after the build
 * the suite has made): two servers, a live writer, check → sync → status → cutover → verify →
 * the way back → cleanup. It must end well and end on the result (issue 34): the last thing a
 * newcomer reads is what happened, step by step, not a table of sequences.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const DEADLINE_MS = 300_000;

function npmRunDemo(): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', 'demo'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), DEADLINE_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), output });
    });
  });
}

describe('npm run demo', () => {
  it('migrates under a live writer, follows back, cleans up, and ends on the result', async () => {
    const { code, output } = await npmRunDemo();
    assert.equal(code, 0, output);
    const banners = [...output.matchAll(/^== (.*)$/gm)].map((m) => m[1]);
    assert.equal(banners.at(-1), 'The result', `the last section:\n${output.slice(-2000)}`);
    const result = output.slice(output.lastIndexOf('== The result'));
    for (const step of ['check', 'sync', 'cutover', 'verify', 'application', 'way back', 'cleanup'])
      assert.match(result, new RegExp(`^ {2}${step} +\\S`, 'm'), `the result names ${step}:\n${result}`);
    assert.match(result, /verify +Identical: 7 tables/);
    assert.match(result, /way back +the old primary follows the new one: Identical: 7 tables .*\(2 set at the return\)/);
    assert.match(result, /no committed write was lost/);
    assert.doesNotMatch(output, /Different:|FAILED/);
  });
});
