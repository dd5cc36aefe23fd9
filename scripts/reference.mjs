#!/usr/bin/env node
// Writes docs/reference/<command>.md from `pgferry <command> --help` (and README.md from `pgferry --help`), so each command's help and
// its reference page say the same thing (test/unit/reference-docs.test.ts checks they do).
// Run after changing an option: npm run build && node scripts/reference.mjs
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const COMMANDS = ['check', 'globals', 'clone', 'sync', 'status', 'verify', 'cutover', 'migrate', 'cleanup'];

/** What this build prints for `pgferry [command] --help`. */
function help(...command) {
  // A pipe, not a terminal: commander wraps at 80 columns, the same everywhere.
  return execFileSync(process.execPath, [join(root, 'bin', 'pgferry.js'), ...command, '--help'], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '' },
  });
}

/** docs/reference/README.md: the overview `pgferry --help` prints, and a link to each command's page. */
export function overviewPage() {
  const links = COMMANDS.map((command) => `[${command}](${command}.md)`).join(' · ');
  return `# Command reference\n\nGenerated from \`pgferry --help\` and each command's \`--help\` by \`scripts/reference.mjs\`. One page per command: ${links}.\n\n\`\`\`text\n${help().trimEnd()}\n\`\`\`\n`;
}

/** The reference page of one command, as this build's help prints it. */
export function referencePage(command) {
  return `# \`pgferry ${command}\`\n\nGenerated from \`pgferry ${command} --help\` by \`scripts/reference.mjs\`; what the command guarantees and how is in [the steps](../steps/README.md).\n\n\`\`\`text\n${help(command).trimEnd()}\n\`\`\`\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  mkdirSync(join(root, 'docs', 'reference'), { recursive: true });
  for (const command of COMMANDS) writeFileSync(join(root, 'docs', 'reference', `${command}.md`), referencePage(command));
  writeFileSync(join(root, 'docs', 'reference', 'README.md'), overviewPage());
  console.log(`wrote docs/reference/{README,${COMMANDS.join(',')}}.md`);
}
