import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';

/** Debian's Chromium: .ci/run installs it when absent. */
export const CHROMIUM = '/usr/bin/chromium';

const run = promisify(execFile);

/**
 * Opens `url` in headless Chromium, lets its scripts run for `settleMs` of virtual time, and
 * returns the DOM as rendered; with `screenshot`, saves a PNG of the page at that size too.
 * Fails loudly when Chromium is not installed: the test needing it must not pass without it.
 */
export async function renderPage(
  url: string,
  options: { settleMs?: number; screenshot?: string; width?: number; height?: number } = {},
): Promise<string> {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is not installed (${CHROMIUM}): apt-get install chromium (.ci/run does it)`);
  const common = [
    '--headless',
    // As root in CI Chromium refuses its sandbox; the page is pgferry's own.
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--no-first-run',
    `--virtual-time-budget=${options.settleMs ?? 5000}`,
    `--window-size=${options.width ?? 1280},${options.height ?? 900}`,
  ];
  if (options.screenshot) await run(CHROMIUM, [...common, `--screenshot=${options.screenshot}`, url], { timeout: 60_000 });
  const { stdout } = await run(CHROMIUM, [...common, '--dump-dom', url], { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}
