import { quoteLiteral } from '../../plumbing/index.js';
import type { Finding } from '../finding.js';
import type { SourceFacts, TargetFacts } from '../facts.js';

/** C and POSIX sort the same way, byte by byte. */
function normalizeLocale(locale: string): string {
  return locale === 'POSIX' ? 'C' : locale.replace(/\.utf-?8$/i, '.UTF-8');
}

export function databaseFindings(source: SourceFacts, target: TargetFacts): Finding[] {
  const findings: Finding[] = [];
  const s = source.server;
  const t = target.server;
  if (s.encoding !== t.encoding) {
    // UTF8 holds every character, and SQL_ASCII stores bytes unconverted; any other target may not.
    const lossy = t.encoding !== 'UTF8' && t.encoding !== 'SQL_ASCII' && s.encoding !== 'SQL_ASCII';
    findings.push({
      id: 'database.encoding',
      severity: lossy ? 'error' : 'warning',
      message: `database encoding differs: source ${s.encoding}, target ${t.encoding}`,
      why: lossy
        ? `text is converted to ${t.encoding} on the way in, and characters ${t.encoding} cannot represent make the copy fail`
        : `text is converted to ${t.encoding} on the way in${s.encoding === 'SQL_ASCII' ? '; SQL_ASCII holds unchecked bytes, and invalid sequences make the copy fail' : ''}`,
      fix: `create the target database with the source's encoding: CREATE DATABASE … TEMPLATE template0 ENCODING ${quoteLiteral(s.encoding)} …;`,
    });
  }
  const differences: string[] = [];
  if (normalizeLocale(s.collate) !== normalizeLocale(t.collate)) differences.push(`LC_COLLATE "${s.collate}" → "${t.collate}"`);
  if (normalizeLocale(s.ctype) !== normalizeLocale(t.ctype)) differences.push(`LC_CTYPE "${s.ctype}" → "${t.ctype}"`);
  if (s.localeProvider !== t.localeProvider) differences.push(`locale provider ${s.localeProvider} → ${t.localeProvider}`);
  else if (s.localeProvider !== 'libc' && s.locale !== t.locale)
    differences.push(`${s.localeProvider} locale "${s.locale}" → "${t.locale}"`);
  if (differences.length > 0) {
    findings.push({
      id: 'database.collation',
      severity: 'warning',
      message: `database collation differs: ${differences.join(', ')}`,
      why: 'text sorts and compares differently on the target: ORDER BY results, range queries and which values count as duplicates under a unique index can change',
      fix: `create the target database with the source's locale: CREATE DATABASE … TEMPLATE template0 ${
        s.localeProvider === 'libc'
          ? `LC_COLLATE ${quoteLiteral(s.collate)} LC_CTYPE ${quoteLiteral(s.ctype)}`
          : `LOCALE_PROVIDER ${s.localeProvider} ${s.localeProvider === 'icu' ? 'ICU_LOCALE' : 'BUILTIN_LOCALE'} ${quoteLiteral(s.locale ?? '')} LOCALE ${quoteLiteral(s.collate)}`
      };`,
    });
  }
  return findings;
}
