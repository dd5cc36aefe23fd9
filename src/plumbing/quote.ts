/**
 * Names and values written into SQL text, quoted by PostgreSQL's lexical rules (the manual's
 * "Lexical Structure", 4.1.1 and 4.1.2.1) so that any name or value reads back as itself.
 * Where a value can travel as a query parameter it does; these are for what can't (DDL,
 * SET TRANSACTION SNAPSHOT, the replication protocol's commands, advice printed for a user).
 */

/**
 * A quoted identifier: `"name"`, with each `"` inside doubled. Quoted, a name keeps its case
 * and may hold any character but NUL. The replication protocol's commands and pgoutput's
 * publication_names read quoted names by the same rule.
 */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `"schema"."name"`, quoted for SQL. */
export function quoteQualified(table: { readonly schema: string; readonly name: string }): string {
  return `${quoteIdent(table.schema)}.${quoteIdent(table.name)}`;
}

/**
 * A string constant: `'text'`, with each `'` inside doubled. A backslash is an ordinary
 * character here because standard_conforming_strings is on (the default since PostgreSQL 9.1,
 * which pgferry assumes on both sides); only with it off would a backslash need the E'' form.
 */
export function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}
