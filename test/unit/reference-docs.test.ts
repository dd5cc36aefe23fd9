/**
 * Each command's --help and its reference page agree (issue 20): docs/reference/ is generated
 * from the help by scripts/reference.mjs, and this fails when an option changed without it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const { COMMANDS, referencePage, overviewPage } = (await import(`${root}scripts/reference.mjs`)) as {
  COMMANDS: string[];
  referencePage: (command: string) => string;
  overviewPage: () => string;
};

describe('docs/reference', () => {
  it('README.md: the page is what pgferry --help prints', () => {
    assert.equal(
      readFileSync(`${root}docs/reference/README.md`, 'utf8'),
      overviewPage(),
      'docs/reference/README.md is out of date: run npm run build && node scripts/reference.mjs',
    );
  });
  for (const command of COMMANDS) {
    it(`${command}: the page is what --help prints`, () => {
      const page = readFileSync(`${root}docs/reference/${command}.md`, 'utf8');
      assert.equal(
        page,
        referencePage(command),
        `docs/reference/${command}.md is out of date: run npm run build && node scripts/reference.mjs`,
      );
    });
  }
});
