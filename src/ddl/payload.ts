import { PgferryError } from '../errors.js';

/** An object a DDL command touched, as pg_event_trigger_ddl_commands() names it. */
export interface TouchedObject {
  readonly type: string;
  /** Quoted and qualified (object_identity). */
  readonly identity: string;
  readonly schema: string | null;
  readonly inExtension: boolean;
  /** What it was right after the command: a statement that makes it, or a table's shape; null for other kinds. */
  readonly definition: string | TableDefinition | null;
  /** A sequence's column (serial), schema.table.column quoted. */
  readonly ownedBy: string | null;
}

/** A table as the capture read it from the source's catalog, right after the command. */
export interface TableDefinition {
  /** Quoted and qualified: the object may be one of its columns or constraints. */
  readonly name: string;
  readonly columns: readonly ColumnDefinition[];
  readonly constraints: readonly { readonly name: string; readonly definition: string }[];
  /** Quoted and qualified, when the table is a partition. */
  readonly partitionOf: string | null;
  readonly bound: string | null;
  /** PARTITION BY's text, when the table is partitioned. */
  readonly partitionKey: string | null;
  /**
   * A partitioned table's partitions, by name; null for any other table, and from a capture
   * installed by a pgferry that did not record them.
   */
  readonly partitions: readonly PartitionBound[] | null;
}

/** One partition of a partitioned table: its name (quoted, qualified) and FOR VALUES bound. */
export interface PartitionBound {
  readonly name: string;
  readonly bound: string;
}

export interface ColumnDefinition {
  readonly name: string;
  /** format_type, with the modifier. */
  readonly type: string;
  readonly notNull: boolean;
  /** The default, or a generated column's expression. */
  readonly default: string | null;
  /** attidentity: 'a' (ALWAYS), 'd' (BY DEFAULT) or ''. */
  readonly identity: string;
  /** attgenerated: 's' (STORED), 'v' (VIRTUAL, 18) or ''. */
  readonly generated: string;
}

/** An object a command dropped, as pg_event_trigger_dropped_objects() names it. */
export interface DroppedObject {
  readonly type: string;
  readonly identity: string;
  readonly schema: string | null;
  /** Named by the command itself, not dropped as a dependent of one that was. */
  readonly original: boolean;
  readonly temporary: boolean;
}

/**
 * The session settings that decide how a statement's date, time and interval literals read
 * ('01/02/2027' is the 1st of February under DateStyle DMY; '2027-02-01' is midnight in the
 * session's time zone), by their names in current_setting.
 */
export interface LiteralSettings {
  readonly datestyle: string;
  readonly intervalstyle: string;
  readonly timezone: string;
}

/** A table that joined the publication in the command's transaction; rows it held already were never streamed. */
export interface JoinedTable {
  readonly table: string;
  readonly hadRows: boolean;
}

/** What the source's event trigger recorded for one command, at its place in the stream. */
export type SchemaChange =
  | {
      readonly event: 'ddl_command_end';
      readonly tag: string;
      /** The whole query string the client sent: the command is one of its statements, or inside one. */
      readonly query: string;
      readonly searchPath: string;
      readonly user: string;
      /** The caller's settings its statement's literals were read under; null from an older capture. */
      readonly settings: LiteralSettings | null;
      readonly objects: readonly TouchedObject[];
      readonly joined: readonly JoinedTable[];
    }
  | {
      readonly event: 'sql_drop';
      readonly tag: string;
      readonly query: string;
      readonly searchPath: string;
      readonly user: string;
      readonly objects: readonly DroppedObject[];
    }
  | {
      /** A table's TRUNCATE on a source whose pgoutput has none (10), from its trigger. */
      readonly event: 'truncate';
      readonly tag: string;
      readonly query: string;
      /** Quoted and qualified. */
      readonly table: string;
    }
  | {
      /** The trigger could not record the command: the target can't follow it without help. */
      readonly event: 'error';
      readonly tag: string;
      readonly query: string;
      readonly error: string;
    };

/** Reads a payload written by the capture (ddl/capture.ts); anything else is a broken stream. */
export function parseSchemaChange(text: string): SchemaChange {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw malformed('not JSON');
  }
  if (!isRecord(value) || value['v'] !== 1) throw malformed('unknown version');
  const event = value['event'];
  const tag = text_(value, 'tag');
  const query = text_(value, 'query');
  if (event === 'error') return { event, tag, query, error: text_(value, 'error') };
  if (event === 'truncate') return { event, tag, query, table: text_(value, 'table') };
  const common = { tag, query, searchPath: text_(value, 'searchPath'), user: text_(value, 'user') };
  const objects = value['objects'];
  if (!Array.isArray(objects)) throw malformed('objects is not a list');
  if (event === 'sql_drop') {
    const dropped = objects.map((o: unknown): DroppedObject => {
      if (!isRecord(o)) throw malformed('a dropped object is not an object');
      return {
        type: text_(o, 'type'),
        identity: text_(o, 'identity'),
        schema: nullableText(o, 'schema'),
        original: o['original'] === true,
        temporary: o['temporary'] === true,
      };
    });
    return { event, ...common, objects: dropped };
  }
  if (event !== 'ddl_command_end') throw malformed(`unknown event ${String(event)}`);
  const touched = objects.map((o: unknown): TouchedObject => {
    if (!isRecord(o)) throw malformed('a touched object is not an object');
    return {
      type: text_(o, 'type'),
      // Some commands (ALTER DEFAULT PRIVILEGES) touch no nameable object.
      identity: nullableText(o, 'identity') ?? '',
      schema: nullableText(o, 'schema'),
      inExtension: o['inExtension'] === true,
      definition: definitionOf(o['definition']),
      ownedBy: nullableText(o, 'ownedBy'),
    };
  });
  const settings = value['settings'];
  const literalSettings = isRecord(settings)
    ? { datestyle: text_(settings, 'datestyle'), intervalstyle: text_(settings, 'intervalstyle'), timezone: text_(settings, 'timezone') }
    : null;
  const joined = value['joined'];
  const tables = (Array.isArray(joined) ? joined : []).map((j: unknown): JoinedTable => {
    if (!isRecord(j)) throw malformed('a joined table is not an object');
    return { table: text_(j, 'table'), hadRows: j['hadRows'] === true };
  });
  return { event, ...common, settings: literalSettings, objects: touched, joined: tables };
}

function definitionOf(value: unknown): string | TableDefinition | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (!isRecord(value) || !Array.isArray(value['columns']) || !Array.isArray(value['constraints'])) throw malformed('a table definition');
  return {
    name: text_(value, 'name'),
    columns: value['columns'].map((c: unknown) => {
      if (!isRecord(c)) throw malformed('a column definition');
      return {
        name: text_(c, 'name'),
        type: text_(c, 'type'),
        notNull: c['notNull'] === true,
        default: nullableText(c, 'default'),
        identity: nullableText(c, 'identity') ?? '',
        generated: nullableText(c, 'generated') ?? '',
      };
    }),
    constraints: value['constraints'].map((k: unknown) => {
      if (!isRecord(k)) throw malformed('a constraint definition');
      return { name: text_(k, 'name'), definition: text_(k, 'definition') };
    }),
    partitionOf: nullableText(value, 'partitionOf'),
    bound: nullableText(value, 'bound'),
    partitionKey: nullableText(value, 'partitionKey'),
    partitions: partitionsOf(value['partitions']),
  };
}

function partitionsOf(value: unknown): PartitionBound[] | null {
  if (value === null || value === undefined) return null;
  if (!Array.isArray(value)) throw malformed('partitions is not a list');
  return value.map((p: unknown) => {
    if (!isRecord(p)) throw malformed('a partition is not an object');
    return { name: text_(p, 'name'), bound: text_(p, 'bound') };
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text_(record: Record<string, unknown>, key: string): string {
  const value = record[key];
  if (typeof value !== 'string') throw malformed(`${key} is not text`);
  return value;
}

function nullableText(record: Record<string, unknown>, key: string): string | null {
  const value = record[key];
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string') throw malformed(`${key} is not text`);
  return value;
}

function malformed(why: string): PgferryError {
  return new PgferryError('stream-undecodable', `source: a schema-change record in the stream is malformed (${why})`, { side: 'source' });
}
