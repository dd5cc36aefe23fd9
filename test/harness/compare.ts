import pg from 'pg';

/**
 * Compares two databases table by table, by content: the multiset of rows, each row printed
 * from the source's non-generated columns by name under pinned output settings, digested
 * inside PostgreSQL. Column order and major version don't change the result; a missing,
 * extra, duplicated or changed row does.
 */
export interface TableComparison {
  readonly table: string;
  readonly sourceRows: number;
  readonly targetRows: number;
  readonly equal: boolean;
  /** For unequal tables: a few rows found on one side only. */
  readonly onlyOnSource: string[];
  readonly onlyOnTarget: string[];
}

export interface Comparison {
  readonly equal: boolean;
  readonly tables: TableComparison[];
}

const PINNED = `SET datestyle = 'ISO, YMD'; SET intervalstyle = postgres; SET extra_float_digits = 3; SET bytea_output = hex; SET timezone = 'UTC'`;

async function open(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(PINNED);
  return client;
}

export async function compareTables(sourceUrl: string, targetUrl: string, tables?: readonly string[]): Promise<Comparison> {
  const source = await open(sourceUrl);
  const target = await open(targetUrl);
  try {
    const { rows } = await source.query<{ qname: string; columns: string }>(
      `SELECT format('%I.%I', n.nspname, c.relname) AS qname,
              string_agg(format('t.%I', a.attname), ', ' ORDER BY a.attname) AS columns
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
        WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgferry') AND n.nspname NOT LIKE 'pg_toast%'
        GROUP BY 1 ORDER BY 1`,
    );
    const chosen = tables ? rows.filter((r) => tables.includes(r.qname)) : rows;
    const results: TableComparison[] = [];
    for (const { qname, columns } of chosen) {
      const digestSql = `SELECT count(*)::int AS n, md5(coalesce(string_agg(h, '' ORDER BY h), '')) AS digest
                           FROM (SELECT md5(row(${columns})::text) AS h FROM ${qname} t) s`;
      const [a, b] = await Promise.all([source.query<{ n: number; digest: string }>(digestSql), target.query<{ n: number; digest: string }>(digestSql)]);
      const equal = a.rows[0]!.digest === b.rows[0]!.digest && a.rows[0]!.n === b.rows[0]!.n;
      let onlyOnSource: string[] = [];
      let onlyOnTarget: string[] = [];
      if (!equal) {
        const rowsSql = `SELECT row(${columns})::text AS r FROM ${qname} t`;
        const [x, y] = await Promise.all([source.query<{ r: string }>(rowsSql), target.query<{ r: string }>(rowsSql)]);
        const counts = new Map<string, number>();
        for (const { r } of x.rows) counts.set(r, (counts.get(r) ?? 0) + 1);
        for (const { r } of y.rows) counts.set(r, (counts.get(r) ?? 0) - 1);
        onlyOnSource = [...counts].filter(([, n]) => n > 0).map(([r]) => r).slice(0, 5);
        onlyOnTarget = [...counts].filter(([, n]) => n < 0).map(([r]) => r).slice(0, 5);
      }
      results.push({ table: qname, sourceRows: a.rows[0]!.n, targetRows: b.rows[0]!.n, equal, onlyOnSource, onlyOnTarget });
    }
    return { equal: results.every((r) => r.equal), tables: results };
  } finally {
    await source.end();
    await target.end();
  }
}
