/**
 * The first ten minutes (issue 34): the README stays short, its quick-start lines stay the ones
 * that work, and no link in the README or docs/ leads nowhere. The quick-start lines themselves
 * run elsewhere: `npm run demo` in test/integration/demo.test.ts, `npm test` is this suite;
 * here, what `npm ci` needs (a lock file in step with package.json) and that both scripts name
 * files the build makes. Every relative link must point to a file that exists and, with an
 * anchor, to a heading in it (GitHub's anchors); every page of docs/ must be linked from somewhere.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const README_MAX_LINES = 200;
const QUICK_START = ['npm ci && npm run demo', 'npm ci && npm test'];

const read = (path: string) => readFileSync(join(root, path), 'utf8');

function markdownFiles(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.md') ? [join(dir, e.name)] : [],
    );
  return [join(root, 'README.md'), ...walk(join(root, 'docs'))].map((f) => relative(root, f));
}

/** Markdown without its fenced blocks and inline code, where a bracket is not a link. */
function prose(markdown: string): string {
  const out: string[] = [];
  let fence: string | null = null;
  for (const line of markdown.split('\n')) {
    const open = /^\s*(`{3,}|~{3,})/.exec(line);
    if (fence === null && open) fence = open[1]!;
    else if (fence !== null && line.trimStart().startsWith(fence)) fence = null;
    else if (fence === null) out.push(line.replace(/`[^`\n]*`/g, ''));
  }
  return out.join('\n');
}

function links(markdown: string): string[] {
  return [...prose(markdown).matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchorsOf(markdown: string): Set<string> {
  return new Set([...prose(markdown).matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => anchor(m[1]!.replace(/`/g, ''))));
}

describe('README.md', () => {
  const readme = read('README.md');

  it(`is at most ${README_MAX_LINES} lines`, () => {
    const lines = readme.trimEnd().split('\n').length;
    assert.ok(lines <= README_MAX_LINES, `README.md has ${lines} lines: move reference material to docs/`);
  });

  it('keeps the quick-start lines, and the scripts they run exist', () => {
    for (const line of QUICK_START)
      assert.match(readme, new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\s|$)`, 'm'), `the quick start lost "${line}"`);
    const manifest = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    assert.equal(manifest.scripts.demo, 'node dist/demo/demo.js');
    assert.ok(existsSync(join(root, 'dist/demo/demo.js')), 'npm run build makes no dist/demo/demo.js');
    assert.match(manifest.scripts.test ?? '', /^npm run build && .*node dist\/test\/run-tests\.js$/);
    assert.ok(existsSync(join(root, 'dist/test/run-tests.js')));
  });

  it('npm ci can install: the lock file is in step with package.json', () => {
    const manifest = JSON.parse(read('package.json')) as Record<string, unknown>;
    const lock = JSON.parse(read('package-lock.json')) as { lockfileVersion: number; packages: Record<string, Record<string, unknown>> };
    assert.ok(lock.lockfileVersion >= 2, 'npm ci needs a lock file of npm 7 or later');
    const locked = lock.packages[''];
    for (const field of ['dependencies', 'devDependencies'])
      assert.deepEqual(
        locked?.[field] ?? {},
        manifest[field] ?? {},
        `package-lock.json's ${field} differ from package.json's: run npm install`,
      );
  });
});

describe('links in README.md and docs/', () => {
  const files = markdownFiles();

  it('every relative link points to an existing file, and every anchor to a heading', () => {
    const broken: string[] = [];
    for (const file of files) {
      for (const link of links(read(file))) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue;
        const [path, fragment] = link.split('#') as [string, string | undefined];
        const to = path === '' ? join(root, file) : resolve(dirname(join(root, file)), decodeURIComponent(path));
        if (!existsSync(to)) {
          broken.push(`${file}: ${link} (no such file)`);
        } else if (fragment !== undefined) {
          if (statSync(to).isDirectory() || !to.endsWith('.md')) broken.push(`${file}: ${link} (an anchor into a non-page)`);
          else if (!anchorsOf(readFileSync(to, 'utf8')).has(fragment)) broken.push(`${file}: ${link} (no such heading)`);
        }
      }
    }
    assert.deepEqual(broken, []);
  });

  it('every page of docs/ is linked from README.md or another page', () => {
    const linked = new Set<string>();
    for (const file of files)
      for (const link of links(read(file))) {
        const path = link.split('#')[0]!;
        if (path && !/^[a-z][a-z0-9+.-]*:/i.test(path)) linked.add(relative(root, resolve(dirname(join(root, file)), path)));
      }
    assert.deepEqual(
      files.filter((f) => f.startsWith('docs/') && !linked.has(f)),
      [],
      'pages nobody links to',
    );
  });
});
