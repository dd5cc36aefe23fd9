import { quoteIdent, quoteLiteral } from '../../plumbing/index.js';
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
  findings.push(...databasePropertyFindings(source, target));
  return findings;
}

/**
 * What a database is besides its contents, which no copy carries (CREATE and ALTER DATABASE are
 * global): its comment, default tablespace and connection limit, each said when the target's
 * differs, with the statement that makes it the same.
 */
function databasePropertyFindings(source: SourceFacts, target: TargetFacts): Finding[] {
  const s = source.server;
  const t = target.server;
  const database = quoteIdent(t.database);
  const findings: Finding[] = [];
  if ((s.comment ?? '') !== (t.comment ?? '')) {
    findings.push({
      id: 'database.comment',
      severity: 'info',
      message:
        s.comment === null ? `the target database has a comment the source's lacks` : `the source database's comment is not on the target`,
      why: 'a comment on a database is a property of the database, not of its contents: no copy carries it',
      fix:
        s.comment === null ? `COMMENT ON DATABASE ${database} IS NULL;` : `COMMENT ON DATABASE ${database} IS ${quoteLiteral(s.comment)};`,
    });
  }
  if (s.tablespace !== t.tablespace) {
    findings.push({
      id: 'database.tablespace',
      severity: 'info',
      message: `default tablespace differs: source "${s.tablespace}", target "${t.tablespace}"`,
      why: 'tables and indexes made without a TABLESPACE clause go to the database default; managed services offer pg_default only',
      fix: `ALTER DATABASE ${database} SET TABLESPACE ${quoteIdent(s.tablespace)}; (with no one connected), or keep the target's if its storage is where you want it`,
    });
  }
  if (s.connectionLimit !== t.connectionLimit) {
    findings.push({
      id: 'database.connection-limit',
      severity: 'info',
      message: `connection limit differs: source ${s.connectionLimit === -1 ? 'none' : s.connectionLimit}, target ${t.connectionLimit === -1 ? 'none' : t.connectionLimit}`,
      why: "the application meets the target's limit after the cut-over",
      fix: `ALTER DATABASE ${database} CONNECTION LIMIT ${s.connectionLimit};`,
    });
  }
  return findings;
}
