import type { ScopeFilter } from '../catalog/index.js';
import { quoteLiteral } from '../plumbing/index.js';

/**
 * The scope's glob patterns as an SQL condition, for the source's event trigger: a table created
 * during sync joins the publication in the transaction that creates it only if the migration
 * would have copied it. Mirrors catalog/scope.ts: a table pattern with a dot matches
 * "schema.table", without one the table name; excludes win; no include means everything.
 */
export function scopeCondition(filter: ScopeFilter, schemaColumn: string, nameColumn: string): string {
  const qualified = `(${schemaColumn} || '.' || ${nameColumn})`;
  const schemaMatches = (patterns: readonly string[]) => anyMatch(patterns.map((p) => [schemaColumn, p] as const));
  const tableMatches = (patterns: readonly string[]) =>
    anyMatch(patterns.map((p) => [p.includes('.') ? qualified : nameColumn, p] as const));
  const parts: string[] = [];
  if (filter.includeSchemas.length > 0) parts.push(schemaMatches(filter.includeSchemas));
  if (filter.excludeSchemas.length > 0) parts.push(`NOT ${schemaMatches(filter.excludeSchemas)}`);
  if (filter.includeTables.length > 0) parts.push(tableMatches(filter.includeTables));
  if (filter.excludeTables.length > 0) parts.push(`NOT ${tableMatches(filter.excludeTables)}`);
  return parts.length === 0 ? 'true' : parts.join(' AND ');
}

function anyMatch(tests: ReadonlyArray<readonly [column: string, pattern: string]>): string {
  return `(${tests.map(([column, pattern]) => `${column} OPERATOR(pg_catalog.~) ${quoteLiteral(globToRegex(pattern))}`).join(' OR ')})`;
}

/** A glob (`*`, `?`, `[…]`, `[!…]`, `{a,b}`) as an anchored POSIX regular expression. */
export function globToRegex(glob: string): string {
  let out = '^';
  let braces = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      while (glob[i + 1] === '*') i++;
      out += '.*';
    } else if (c === '?') {
      out += '.';
    } else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) {
        out += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, end);
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      out += `[${body.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else if (c === '{') {
      braces++;
      out += '(';
    } else if (c === '}' && braces > 0) {
      braces--;
      out += ')';
    } else if (c === ',' && braces > 0) {
      out += '|';
    } else if (c === '\\' && i + 1 < glob.length) {
      out += escapeRegex(glob[++i]!);
    } else {
      out += escapeRegex(c);
    }
  }
  return `${out}$`;
}

function escapeRegex(c: string): string {
  return /[.^$|()[\]{}*+?\\]/.test(c) ? `\\${c}` : c;
}
