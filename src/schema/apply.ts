import type pg from 'pg';
import { PgferryError, messageOf } from '../errors.js';
import { appliedSchemaObjects, ensureStateSchema, recordSchemaObject } from '../state/index.js';
import type { ExtractedSchema, SchemaObject, Section } from './model.js';
import { SQLSTATE, sqlState } from '../plumbing/index.js';

/** SQLSTATEs that mean "it is already there". */
const ALREADY_EXISTS = new Set(['42P06', '42P07', '42710', '42723']);
/** By kind, SQLSTATEs that also mean "already there": an ATTACH made before, a second primary key. */
const ALREADY_THERE_FOR: Partial<Record<SchemaObject['kind'], string>> = { 'partition attach': '42809', constraint: '42P16' };
/** "extension has no installation script nor update path for version". */
const NO_SUCH_EXTENSION_VERSION = '22023';

export interface ApplyResult {
  readonly created: number;
  /** Created by an earlier run (recorded in the pgferry schema) or already identical on the target. */
  readonly alreadyThere: number;
  readonly notes: readonly string[];
}

export interface ApplyOptions {
  /** Reads the target's own schema, to tell an identical existing object from a clash. */
  readonly readTargetSchema: () => Promise<ExtractedSchema>;
  /** Leave owners as the migrating role (--no-owner). */
  readonly noOwner?: boolean;
  /** Leave privileges at their defaults (--no-acl). */
  readonly noAcl?: boolean;
  readonly onObject?: (object: SchemaObject) => void;
}

/**
 * Creates schema objects on the target and remembers what exists, across the connections of a
 * clone (post-data objects are built by several index jobs at once). Every created object is
 * recorded in pgferry.schema_objects in the same transaction, and skipped on a rerun.
 */
export class SchemaApplier {
  private readonly notes: string[] = [];
  private readonly missingRoles = new Set<string>();
  private done = new Set<string>();
  private roles = new Set<string>();
  private targetSchema: Promise<Map<string, SchemaObject>> | undefined;
  private created = 0;
  private alreadyThere = 0;

  constructor(
    readonly schema: ExtractedSchema,
    private readonly options: ApplyOptions,
  ) {}

  /** Reads what earlier runs created and which roles exist; call once before applying. */
  async prepare(client: pg.Client): Promise<void> {
    await ensureStateSchema(client);
    this.done = await appliedSchemaObjects(client);
    this.roles = new Set((await client.query<{ rolname: string }>('SELECT rolname FROM pg_roles')).rows.map((r) => r.rolname));
  }

  isDone(object: SchemaObject): boolean {
    return this.done.has(object.identity);
  }

  /** Objects of a section this run creates (owners and grants only when asked for). */
  objectsOf(section: Section): SchemaObject[] {
    return this.schema.objects.filter((o) => o.section === section && wanted(o, this.options));
  }

  /**
   * Pre-data runs in one transaction: a failure leaves nothing behind, and the rerun starts
   * clean. Post-data commits object by object, so a rerun after a failed index keeps what was
   * built.
   */
  async applySection(client: pg.Client, section: Section): Promise<void> {
    const oneTransaction = section === 'pre-data';
    if (oneTransaction) await begin(client);
    try {
      for (const object of this.objectsOf(section)) await this.apply(client, object, !oneTransaction, section);
      if (oneTransaction) await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  /** One post-data object in its own transaction, for the index jobs of a clone. */
  async applyOne(client: pg.Client, object: SchemaObject): Promise<void> {
    try {
      await this.apply(client, object, true, object.section);
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  result(): ApplyResult {
    const notes = [...this.notes];
    if (this.missingRoles.size > 0) {
      notes.push(
        `roles missing on the target, so their ownership and grants were left out: ${[...this.missingRoles].sort().join(', ')} ` +
          `(create them and run again, or pass --no-owner / --no-acl)`,
      );
    }
    return { created: this.created, alreadyThere: this.alreadyThere, notes };
  }

  private async apply(client: pg.Client, object: SchemaObject, ownTransaction: boolean, section: Section): Promise<void> {
    if (this.done.has(object.identity)) {
      this.alreadyThere++;
      return;
    }
    const absent = (object.requiresRoles ?? []).filter((r) => !this.roles.has(r));
    if (absent.length > 0) {
      for (const role of absent) this.missingRoles.add(role);
      return;
    }
    this.options.onObject?.(object);
    if (ownTransaction) await begin(client);
    await client.query('SAVEPOINT pgferry_object');
    try {
      await runStatements(client, object, this.notes);
      this.created++;
    } catch (error) {
      await client.query('ROLLBACK TO SAVEPOINT pgferry_object');
      const code = sqlState(error);
      // Whether it is really the same object is decided by comparing definitions below.
      const exists = code !== undefined && (ALREADY_EXISTS.has(code) || ALREADY_THERE_FOR[object.kind] === code);
      if (!exists) throw failure(object, error, this.options, section);
      const existing = (await this.existingOnTarget()).get(object.identity);
      if (object.kind === 'table' && !(existing && sameDefinition(existing, object)) && (await rowsStillFit(client, object))) {
        // Prepared by the user on purpose (a widened column, say): the copy goes through text
        // COPY and the server casts each value.
        this.notes.push(
          `table ${object.name} already exists on the target with other column types; its rows are copied into it as they are`,
        );
      } else if (!existing || !sameDefinition(existing, object)) {
        throw new PgferryError(
          'schema-conflict',
          `target: ${object.kind} ${object.name} already exists with a different definition (${messageOf(error)})`,
          {
            side: 'target',
            fix: `drop or rename it on the target and run again; pgferry would create:\n${object.statements.join('\n')}`,
            cause: error,
          },
        );
      }
      this.alreadyThere++;
    }
    await recordSchemaObject(client, object.identity, section);
    if (ownTransaction) await client.query('COMMIT');
    this.done.add(object.identity);
  }

  private existingOnTarget(): Promise<Map<string, SchemaObject>> {
    this.targetSchema ??= this.options.readTargetSchema().then((s) => new Map(s.objects.map((o) => [o.identity, o])));
    return this.targetSchema;
  }
}

/** Creates one section's objects on the target, in order (see SchemaApplier). */
export async function applySection(
  client: pg.Client,
  schema: ExtractedSchema,
  section: Section,
  options: ApplyOptions,
): Promise<ApplyResult> {
  const applier = new SchemaApplier(schema, options);
  await applier.prepare(client);
  await applier.applySection(client, section);
  return applier.result();
}

async function begin(client: pg.Client): Promise<void> {
  await client.query('BEGIN');
  // Names in the statements are all schema-qualified; an empty search_path makes sure they
  // mean what they meant on the source. Function bodies are checked when called, not now,
  // because they may refer to tables created later in the script.
  await client.query(`SELECT pg_catalog.set_config('search_path', '', true), set_config('check_function_bodies', 'off', true),
                             set_config('client_min_messages', 'warning', true)`);
}

/**
 * Index partitions are attached one at a time across every session of the schema copy. A
 * partitioned index turns valid when the attach of its last partition commits, and then checks
 * its own parent; two attaches in one partition tree committing side by side each see the
 * other's part still missing, and the top index stays invalid for good (found by the zoo
 * corpus: a multi-level tree's primary key, and then the foreign key into it, refused). The
 * lock is transaction-scoped and taken only for the attach, after the index is built.
 */
const INDEX_ATTACH_LOCK = 'SELECT pg_catalog.pg_advisory_xact_lock(8532981, 1)';
const INDEX_ATTACH = /^ALTER INDEX .* ATTACH PARTITION /s;

async function runStatements(client: pg.Client, object: SchemaObject, notes: string[]): Promise<void> {
  for (const statement of object.statements) {
    try {
      if (INDEX_ATTACH.test(statement)) await client.query(INDEX_ATTACH_LOCK);
      await client.query(statement);
    } catch (error) {
      const code = sqlState(error);
      if (object.kind === 'extension' && code === NO_SUCH_EXTENSION_VERSION && / VERSION '/.test(statement)) {
        // The target lacks the source's version: take the one it has, and say so.
        await client.query('ROLLBACK TO SAVEPOINT pgferry_object');
        await client.query('SAVEPOINT pgferry_object');
        await client.query(statement.replace(/ VERSION '[^']*'/, ''));
        notes.push(
          `extension ${object.name}: the target has no version ${/VERSION '([^']*)'/.exec(statement)?.[1]}; created its default version instead`,
        );
        continue;
      }
      throw new StatementFailed(statement, error);
    }
  }
}

/**
 * An existing target table takes the source's rows when it has exactly the source's columns
 * and each type is the same or one the server assigns to implicitly (int → bigint,
 * varchar(10) → text, …).
 */
async function rowsStillFit(client: pg.Client, object: SchemaObject): Promise<boolean> {
  if (!object.columns) return false;
  await client.query('SAVEPOINT pgferry_fit');
  try {
    const { rows } = await client.query<{ fits: boolean }>(
      `WITH source AS (SELECT * FROM unnest($2::text[], $3::text[]) AS s(name, type)),
            target AS (SELECT format('%I', attname) AS name, atttypid AS type FROM pg_attribute
                        WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped)
       SELECT (SELECT count(*) FROM source) = (SELECT count(*) FROM target)
              AND coalesce(bool_and(t.type IS NOT NULL AND (s.type::regtype = t.type OR EXISTS (
                    SELECT 1 FROM pg_cast c WHERE c.castsource = s.type::regtype AND c.casttarget = t.type AND c.castcontext IN ('i', 'a')))), false) AS fits
         FROM source s LEFT JOIN target t ON t.name = s.name`,
      [object.name, object.columns.map((c) => c.name), object.columns.map((c) => c.type)],
    );
    await client.query('RELEASE SAVEPOINT pgferry_fit');
    return rows[0]?.fits === true;
  } catch {
    // A type the target doesn't know: it does not fit.
    await client.query('ROLLBACK TO SAVEPOINT pgferry_fit');
    return false;
  }
}

function normalize(statements: readonly string[]): string {
  return statements
    .filter((s) => !s.startsWith('COMMENT ON'))
    .join('\n')
    .replace(/\s+/g, ' ')
    .trim();
}

function sameDefinition(a: SchemaObject, b: SchemaObject): boolean {
  return normalize(a.statements) === normalize(b.statements);
}

/** A statement of an object that the target refused: the server's error is the cause, the statement is named. */
class StatementFailed extends Error {
  constructor(
    readonly statement: string,
    cause: unknown,
  ) {
    super(messageOf(cause), { cause });
  }
}

function failure(object: SchemaObject, error: unknown, options: ApplyOptions, section: Section): PgferryError {
  const statement = error instanceof StatementFailed ? error.statement : (object.statements[0] ?? '');
  const code = sqlState(error);
  const roleHint =
    code === SQLSTATE.insufficientPrivilege && (object.kind === 'owner' || object.kind === 'privileges')
      ? `connect to the target as a superuser or a member of the role, or pass ${options.noOwner ? '--no-acl' : '--no-owner'}; `
      : '';
  return new PgferryError(
    'schema-conflict',
    `target: creating ${object.kind} ${object.name} failed: ${messageOf(error)}${code ? ` (SQLSTATE ${code})` : ''}`,
    {
      side: 'target',
      fix: `${roleHint}fix the cause on the target and run again (${
        section === 'pre-data'
          ? 'pre-data is created in one transaction, so nothing of it was kept'
          : 'the post-data objects created so far are kept'
      }); the statement was:\n${statement}`,
      cause: error,
    },
  );
}

function wanted(object: SchemaObject, options: ApplyOptions): boolean {
  if (object.kind === 'owner') return !options.noOwner;
  if (object.kind === 'privileges' || object.kind === 'default privileges') return !options.noAcl;
  return true;
}
