import type { Scope } from '../catalog/index.js';
import { TRUNCATE_TRIGGER_PREFIX } from './capture.js';
import type { DroppedObject, SchemaChange, TouchedObject } from './payload.js';
import { splitStatements, statementHasTag, withoutLeadingComments } from './statements.js';

/** What replaying one captured command on the target comes to. */
export type ReplayStep =
  /** The statement the client sent, found in its query string: run as it was written. */
  | { readonly kind: 'statement'; readonly text: string }
  /** The command ran inside another statement (a DO block, a function, a trigger): rebuilt from what the trigger read. */
  | { readonly kind: 'rebuild' }
  | { readonly kind: 'skip'; readonly why: string };

/** Commands about replication itself: the target's own setup, never the source's. */
const NEVER_REPLAYED = /^((CREATE|ALTER|DROP) (PUBLICATION|SUBSCRIPTION|EVENT TRIGGER)|REINDEX)$/;

/**
 * Statements that never run DDL inside them, so a command the trigger reports can't come from
 * them: skipped while looking for the statement that fired. Anything else (DO, CALL, SELECT of
 * a function such as pg_partman's) may, and stops the search.
 */
const NEVER_FIRES =
  /^(INSERT|UPDATE|DELETE|MERGE|BEGIN|START|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|SET|RESET|SHOW|LOCK|TRUNCATE|COPY|VACUUM|ANALYZE|ANALYSE|LISTEN|NOTIFY|UNLISTEN|DISCARD|CHECKPOINT|DEALLOCATE|VALUES|TABLE|CLUSTER|REINDEX|ALTER\s+SYSTEM|REASSIGN)\b/i;

/** The schema of a session's temporary objects, as event triggers name it ('pg_temp', or its own 'pg_temp_3'). */
const TEMPORARY_SCHEMA = /^pg_temp(_\d+)?$/;

/** Commands on global objects: event triggers never fire for them (a user mapping is a database's own). */
const GLOBAL_OBJECT = /^(CREATE|ALTER|DROP)\s+(ROLE|USER(?!\s+MAPPING)|GROUP|DATABASE|TABLESPACE)\b/i;
/**
 * GRANT and REVOKE of a role's membership (no ON), or on a database, tablespace or parameter, are
 * global too; COMMENT on a global object as well.
 */
const GLOBAL_GRANT = /^(GRANT|REVOKE)\b((?![\s\S]*\bON\b)|[\s\S]*?\bON\s+(DATABASE|TABLESPACE|PARAMETER)\b)/i;
const GLOBAL_COMMENT = /^COMMENT\s+ON\s+(DATABASE|ROLE|TABLESPACE)\b/i;

function onGlobalObject(text: string): boolean {
  return GLOBAL_OBJECT.test(text) || GLOBAL_GRANT.test(text) || GLOBAL_COMMENT.test(text);
}

/**
 * Where the search stands in each query string of one source transaction: the statements of
 * a string fire in order, so each is matched once, after the one matched before it.
 */
export class StatementCursor {
  private readonly positions = new Map<string, { readonly statements: readonly string[]; next: number }>();
  /** Commands on global objects passed over since the last look: never carried, only reported. */
  private globals: string[] = [];

  /** The commands on global objects (roles, databases, tablespaces) passed over since the last call. */
  takeGlobals(): string[] {
    const globals = this.globals;
    this.globals = [];
    return globals;
  }

  /** The statement of `query` that fired `tag`, or undefined when it came from inside another statement. */
  take(query: string, tag: string): string | undefined {
    let entry = this.positions.get(query);
    if (!entry) this.positions.set(query, (entry = { statements: splitStatements(query), next: 0 }));
    for (let i = entry.next; i < entry.statements.length; i++) {
      const statement = entry.statements[i]!;
      const text = withoutLeadingComments(statement);
      if (onGlobalObject(text)) {
        this.globals.push(statement);
        continue;
      }
      if (NEVER_FIRES.test(text)) continue;
      if (!statementHasTag(statement, firingTag(tag))) return undefined;
      entry.next = i + 1;
      return statement;
    }
    return undefined;
  }
}

/** The words a statement starts with for a tag whose name is not its first words. */
function firingTag(tag: string): string {
  if (tag === 'CREATE TABLE AS') return 'CREATE TABLE';
  if (tag === 'SELECT INTO') return 'SELECT';
  return tag;
}

/** Decides how a captured command reaches the target: pure, so every rule is unit-tested. */
export function planReplay(
  change: Extract<SchemaChange, { event: 'ddl_command_end' }>,
  cursor: StatementCursor,
  scope: Scope,
  dropped: readonly DroppedObject[] = [],
): ReplayStep {
  // Claim the statement even when skipping it: the next command of the string is after it.
  const statement = cursor.take(change.query, change.tag);
  if (NEVER_REPLAYED.test(change.tag)) return { kind: 'skip', why: 'replication set-up is not migrated' };
  if (aboutLargeObjects(change)) {
    return { kind: 'skip', why: "large objects are carried by the cut-over, which makes the target's the source's" };
  }
  // Someone dropped pgferry's TRUNCATE trigger (10 sources); the target never had it. Sync puts it back when it starts again.
  if (dropped.length > 0 && dropped.every((o) => o.type === 'trigger' && o.identity.startsWith(TRUNCATE_TRIGGER_PREFIX))) {
    return { kind: 'skip', why: "pgferry's own TRUNCATE capture on the source, never on the target" };
  }
  // A temporary table (pg_partman moves rows through one) is the source session's own, gone at its
  // end: the target's apply session has no use for it, and a second one of the same name would fail there.
  if (change.objects.length > 0 && change.objects.every((o) => o.schema !== null && TEMPORARY_SCHEMA.test(o.schema))) {
    return { kind: 'skip', why: 'temporary objects live in the source session only' };
  }
  if (change.objects.length === 0 && dropped.length > 0 && dropped.every((o) => o.temporary)) {
    return { kind: 'skip', why: 'temporary objects live in the source session only' };
  }
  if (change.objects.length > 0 && change.objects.every((o) => o.inExtension)) {
    return { kind: 'skip', why: 'made by an extension script: the extension command carries it' };
  }
  // A command on an excluded table is about that table, whatever else it made (its sequence, its index).
  const outside = change.objects.filter((o) => !inScope(o, scope));
  if (outside.some((o) => o.type === 'table') || (change.objects.length > 0 && outside.length === change.objects.length)) {
    return { kind: 'skip', why: 'outside the migration' };
  }
  if (statement === undefined) return { kind: 'rebuild' };
  if (/\bDETACH\s+PARTITION\b[\s\S]*\bFINALIZE\b/i.test(statement)) {
    return { kind: 'skip', why: 'finishes a concurrent detach, which the target did at once' };
  }
  return { kind: 'statement', text: forTransactionBlock(statement) };
}

/**
 * ALTER LARGE OBJECT, and GRANT, REVOKE or COMMENT on one: large objects are in no stream, and the
 * one named may not exist on the target yet (made during sync); the cut-over reconciles them all.
 */
function aboutLargeObjects(change: Extract<SchemaChange, { event: 'ddl_command_end' }>): boolean {
  if (change.tag === 'ALTER LARGE OBJECT') return true;
  // GRANT and REVOKE name the type in upper case ('LARGE OBJECT'), COMMENT in lower case.
  return change.objects.length > 0 && change.objects.every((o) => o.type.toLowerCase() === 'large object');
}

function inScope(object: TouchedObject, scope: Scope): boolean {
  if (object.type === 'schema') return scope.includesSchema(unquote(object.identity));
  if (object.schema === null) return true;
  if (!scope.includesSchema(object.schema)) return false;
  if (object.type === 'table') {
    const name = relationName(object.identity, object.schema);
    return name === undefined || scope.includes({ schema: object.schema, name });
  }
  return true;
}

/** The relation's own name from its identity (schema.name, quoted as needed). */
function relationName(identity: string, schema: string): string | undefined {
  const prefix = `${quoteIfNeeded(schema)}.`;
  return identity.startsWith(prefix) ? unquote(identity.slice(prefix.length)) : undefined;
}

function quoteIfNeeded(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

function unquote(name: string): string {
  return name.startsWith('"') && name.endsWith('"') ? name.slice(1, -1).replace(/""/g, '"') : name;
}

/**
 * The apply runs inside the batch's transaction, where CONCURRENTLY is refused; the target has
 * no other clients to spare from a lock, so the plain form does the same.
 */
export function forTransactionBlock(statement: string): string {
  return withoutLeadingComments(statement)
    .replace(/^(CREATE\s+(?:UNIQUE\s+)?INDEX\s+)CONCURRENTLY\s+/i, '$1')
    .replace(/^(DROP\s+INDEX\s+)CONCURRENTLY\s+/i, '$1')
    .replace(/(\bDETACH\s+PARTITION\b[\s\S]*?)\s+CONCURRENTLY\b/i, '$1');
}
