/**
 * Compares two databases table by table, by content: the multiset of rows of every leaf table,
 * each row printed from the source's non-generated columns, by name, under pinned output
 * settings and digested inside PostgreSQL. Column order, physical layout and major version don't
 * change the result; a missing, extra, duplicated or changed row does.
 */
import pg from 'pg';

export interface TableComparison {
  /** Schema-qualified and quoted where needed, as format('%I.%I') prints it. */
  readonly table: string;
  /** Rows on each side; null when the table is not there. */
  readonly sourceRows: number | null;
  readonly targetRows: number | null;
  readonly equal: boolean;
  /** For an unequal table, up to 5 rows (as row(...)::text) found more often on the source than on the target. */
  readonly onlyOnSource: string[];
  /** For an unequal table, up to 5 rows found more often on the target than on the source. */
  readonly onlyOnTarget: string[];
  /** Why the rows were not compared: the table, or one of the source's columns, missing on a side. */
  readonly problem?: string;
}

export interface Comparison {
  readonly equal: boolean;
  readonly tables: TableComparison[];
}

/** Schemas never compared: the catalogs and pgferry's own bookkeeping. */
const EXCLUDED_SCHEMAS = ['pg_catalog', 'information_schema', 'pgferry', 'pgferry_capture'];
const EXAMPLES = 5;

/**
 * Every output setting a value's text depends on, so both servers print the same value the same
 * way whatever their configuration; the search_path also decides how unqualified table names
 * given to compareTables resolve, and how regclass-like values print.
 */
const PINNED = [
  `SET datestyle = 'ISO, YMD'`,
  'SET intervalstyle = postgres',
  'SET extra_float_digits = 3',
  'SET bytea_output = hex',
  `SET timezone = 'UTC'`,
  `SET lc_monetary = 'C'`,
  'SET search_path = pg_catalog, public',
  'SET statement_timeout = 0',
].join('; ');

interface TableShape {
  /** The non-generated columns, in attnum order. */
  readonly columns: string[];
  /** Every column, generated ones too. */
  readonly allColumns: string[];
}

interface Digest {
  readonly rows: number;
  readonly sum: string;
}

/**
 * Compares the leaf tables (relkind 'r': plain tables and leaf partitions, never a partitioned
 * parent) of every user schema on both sides, or only those named in `tables` (resolved under
 * search_path pg_catalog, public; a partitioned table stands for its leaf partitions). A table
 * on one side only is unequal. Rows are compared as multisets: a duplicated row is a difference.
 *
 * Each side is read in one REPEATABLE READ transaction, so all its tables come from one
 * snapshot. When a table differs, both sides' rows are fetched to find examples: fine for
 * test sizes, not for production ones.
 */
export async function compareTables(sourceUrl: string, targetUrl: string, tables?: readonly string[]): Promise<Comparison> {
  const source = await open(sourceUrl);
  let target: pg.Client;
  try {
    target = await open(targetUrl);
  } catch (error) {
    await source.end().catch(() => undefined);
    throw error;
  }
  try {
    const [sourceShapes, targetShapes] = await Promise.all([shapes(source, tables), shapes(target, tables)]);
    const names = [...new Set([...sourceShapes.keys(), ...targetShapes.keys()])].sort();
    const results: TableComparison[] = [];
    for (const table of names) {
      results.push(await compareOne(source, target, table, sourceShapes.get(table), targetShapes.get(table)));
    }
    if (tables) {
      // A name that resolves on neither side must not pass as "nothing differs".
      const unresolved = await Promise.all([unresolvedNames(source, tables), unresolvedNames(target, tables)]);
      for (const name of tables) {
        if (unresolved[0].has(name) && unresolved[1].has(name)) {
          results.push({
            table: name,
            sourceRows: null,
            targetRows: null,
            equal: false,
            onlyOnSource: [],
            onlyOnTarget: [],
            problem: 'no table by that name on either side',
          });
        }
      }
    }
    return { equal: results.every((r) => r.equal), tables: results };
  } finally {
    await Promise.all([source.end().catch(() => undefined), target.end().catch(() => undefined)]);
  }
}

async function open(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: 'pgferry-compare' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query(`${PINNED}; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`);
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
  return client;
}

/**
 * The relations a name given as u.given stands for: itself, and when it is partitioned, its
 * leaf partitions (pg_partition_tree has no rows for a table outside any partition tree).
 */
const LEAVES = `SELECT to_regclass(u.given) AS oid UNION SELECT p.relid FROM pg_partition_tree(to_regclass(u.given)) AS p WHERE p.isleaf`;

/** The leaf tables to compare on one side, by qualified name, with their columns. */
async function shapes(client: pg.Client, tables: readonly string[] | undefined): Promise<Map<string, TableShape>> {
  const chosen = tables
    ? `SELECT DISTINCT leaf.oid FROM unnest($1::text[]) AS u(given) CROSS JOIN LATERAL (${LEAVES}) AS leaf`
    : `SELECT c.oid FROM pg_class c WHERE c.relkind = 'r' AND $1::text[] IS NULL`;
  // attgenerated through to_jsonb: the column exists from PostgreSQL 12, and sources go back to 10.
  // A table without columns (it can hold rows) has one row here with no attribute: no column.
  const { rows } = await client.query<{ name: string; columns: string[]; all_columns: string[] }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS name,
            coalesce(array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attnum IS NOT NULL AND coalesce(to_jsonb(a) ->> 'attgenerated', '') = ''), '{}') AS columns,
            coalesce(array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attnum IS NOT NULL), '{}') AS all_columns
       FROM (${chosen}) AS chosen
       JOIN pg_class c ON c.oid = chosen.oid
       JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE c.relkind = 'r'
        AND n.nspname <> ALL ($2::text[])
        AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
      GROUP BY n.nspname, c.relname`,
    [tables ? [...tables] : null, EXCLUDED_SCHEMAS],
  );
  return new Map(rows.map((r) => [r.name, { columns: r.columns, allColumns: r.all_columns }]));
}

/** The names among `tables` that stand for no leaf table on this side. */
async function unresolvedNames(client: pg.Client, tables: readonly string[]): Promise<Set<string>> {
  const { rows } = await client.query<{ given: string }>(
    `SELECT u.given FROM unnest($1::text[]) AS u(given)
      WHERE NOT EXISTS (SELECT FROM (${LEAVES}) AS leaf JOIN pg_class c ON c.oid = leaf.oid WHERE c.relkind = 'r')`,
    [[...tables]],
  );
  return new Set(rows.map((r) => r.given));
}

async function compareOne(
  source: pg.Client,
  target: pg.Client,
  table: string,
  sourceShape: TableShape | undefined,
  targetShape: TableShape | undefined,
): Promise<TableComparison> {
  if (!sourceShape || !targetShape) {
    const present = sourceShape ? source : target;
    const rows = Number((await present.query<{ n: string }>(`SELECT count(*)::text AS n FROM ONLY ${table}`)).rows[0]?.n);
    return {
      table,
      sourceRows: sourceShape ? rows : null,
      targetRows: targetShape ? rows : null,
      equal: false,
      onlyOnSource: [],
      onlyOnTarget: [],
      problem: sourceShape ? 'missing on the target' : 'missing on the source',
    };
  }
  const missing = sourceShape.columns.filter((column) => !targetShape.allColumns.includes(column));
  if (missing.length > 0) {
    const count = `SELECT count(*)::text AS n FROM ONLY ${table}`;
    const [a, b] = await Promise.all([source.query<{ n: string }>(count), target.query<{ n: string }>(count)]);
    return {
      table,
      sourceRows: Number(a.rows[0]?.n),
      targetRows: Number(b.rows[0]?.n),
      equal: false,
      onlyOnSource: [],
      onlyOnTarget: [],
      problem: `column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} missing on the target`,
    };
  }
  const rowText = `row(${sourceShape.columns.map((column) => `t.${quoteIdent(column)}`).join(', ')})::text`;
  const [a, b] = await Promise.all([digest(source, table, rowText), digest(target, table, rowText)]);
  const equal = a.rows === b.rows && a.sum === b.sum;
  let onlyOnSource: string[] = [];
  let onlyOnTarget: string[] = [];
  if (!equal) {
    const all = `SELECT ${rowText} AS r FROM ONLY ${table} t`;
    const [x, y] = await Promise.all([source.query<{ r: string }>(all), target.query<{ r: string }>(all)]);
    const counts = new Map<string, number>();
    for (const { r } of x.rows) counts.set(r, (counts.get(r) ?? 0) + 1);
    for (const { r } of y.rows) counts.set(r, (counts.get(r) ?? 0) - 1);
    onlyOnSource = examples(counts, 1);
    onlyOnTarget = examples(counts, -1);
  }
  return { table, sourceRows: a.rows, targetRows: b.rows, equal, onlyOnSource, onlyOnTarget };
}

/**
 * The row count and an order-independent digest of the multiset of rows: the sums of the two
 * 64-bit halves of each row's md5. The text is hashed as UTF-8 whatever the database encoding.
 */
async function digest(client: pg.Client, table: string, rowText: string): Promise<Digest> {
  const { rows } = await client.query<{ n: string; s1: string; s2: string }>(
    `SELECT count(*)::text AS n,
            coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::int8::numeric), 0)::text AS s1,
            coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::int8::numeric), 0)::text AS s2
       FROM (SELECT md5(convert_to(${rowText}, 'UTF8')) AS h FROM ONLY ${table} t) AS hashed`,
  );
  const row = rows[0];
  if (!row) throw new Error(`no digest for ${table}`);
  return { rows: Number(row.n), sum: `${row.s1}/${row.s2}` };
}

/** Up to EXAMPLES rows whose surplus has the given sign, a row in surplus n times listed once. */
function examples(counts: Map<string, number>, sign: 1 | -1): string[] {
  const found: string[] = [];
  for (const [row, n] of counts) {
    if (Math.sign(n) === sign) found.push(row);
    if (found.length === EXAMPLES) break;
  }
  return found;
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
