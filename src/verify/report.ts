import type { TableCheck } from './check-table.js';
import { copiesOf } from './differences.js';
import type { KeyValues } from './ranges.js';
import type { Difference, RowKey, TableResult } from './types.js';

/** A check as the report shows it: keys by column name, keyless rows once per differing copy. */
export function tableResult(check: TableCheck, maxDifferences: number): TableResult {
  const { table } = check;
  const differences: Difference[] = [];
  for (const d of check.keyed) {
    differences.push({
      kind: d.kind,
      key: keyRecord(
        table.key.map((k) => k.name),
        d.key,
      ),
      ...(d.columns ? { columns: d.columns } : {}),
    });
  }
  for (const d of check.keyless) {
    const { kind, copies } = copiesOf(d);
    for (let i = 0; i < copies; i++) differences.push({ kind, key: d.row === null ? null : { ...d.row } });
  }
  const truncated = check.truncated || differences.length > maxDifferences;
  return {
    name: table.name,
    status: check.status,
    sourceRows: check.sourceRows,
    targetRows: check.targetRows,
    seconds: Number(check.seconds.toFixed(3)),
    differences: differences.slice(0, maxDifferences),
    ...(truncated && check.status === 'different' ? { truncated: true } : {}),
    ...(check.error !== undefined ? { error: check.error } : {}),
  };
}

export function keyRecord(names: readonly string[], values: KeyValues): RowKey {
  const key: RowKey = {};
  names.forEach((name, i) => (key[name] = values[i] ?? null));
  return key;
}
