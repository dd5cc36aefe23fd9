// Placeholder until the verify stage lands from its branch: counts only, same interface.
import type { ScopeFilter } from '../catalog/index.js';
import { listTables, Scope } from '../catalog/index.js';
import { connect, type ConnectionSpec } from '../config/index.js';
import type { Logger } from '../log/index.js';

export interface VerifyOptions {
  source: ConnectionSpec;
  target: ConnectionSpec;
  filter: ScopeFilter;
  mode: 'full' | 'counts';
  jobs?: number;
  logger: Logger;
  maxDifferences?: number;
  recheckWhileSyncing?: boolean;
  signal?: AbortSignal;
}
export interface VerifyReport {
  identical: boolean;
  mode: 'full' | 'counts';
  seconds: number;
  tables: Array<{
    name: string;
    status: 'identical' | 'different' | 'missing-on-target' | 'error';
    sourceRows: number;
    targetRows: number;
    seconds: number;
    differences: Array<{ kind: 'missing' | 'extra' | 'changed'; key: Record<string, string | null> | null; columns?: string[] }>;
  }>;
  sequences: Array<{ name: string; source: string | null; target: string | null; status: 'identical' | 'behind' | 'ahead' | 'missing-on-target' }>;
  schema: Array<{ object: string; kind: 'missing' | 'extra' | 'changed' }>;
}
export async function verify(options: VerifyOptions): Promise<VerifyReport> {
  const started = Date.now();
  const s = await connect(options.source);
  const t = await connect(options.target);
  try {
    const tables = await listTables(s.client, new Scope(options.filter));
    const out: VerifyReport['tables'] = [];
    for (const table of tables.filter((x) => x.kind === 'table')) {
      const q = `SELECT count(*)::int AS n FROM "${table.schema}"."${table.name}"`;
      const [a, b] = await Promise.all([s.client.query<{ n: number }>(q), t.client.query<{ n: number }>(q)]);
      const sr = a.rows[0]!.n;
      const tr = b.rows[0]!.n;
      out.push({ name: `${table.schema}.${table.name}`, status: sr === tr ? 'identical' : 'different', sourceRows: sr, targetRows: tr, seconds: 0, differences: [] });
    }
    return { identical: out.every((x) => x.status === 'identical'), mode: 'counts', seconds: (Date.now() - started) / 1000, tables: out, sequences: [], schema: [] };
  } finally {
    await s.client.end();
    await t.client.end();
  }
}
