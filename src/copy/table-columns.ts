import { PgferryError } from '../errors.js';
import { chooseFormat, type UnitCopy } from './pipe.js';
import type { SourceTable } from './source-tables.js';

/** What each table's pipes carry, and the tables whose copy waits for the stream. */
export interface TableColumns {
  readonly jobsByTable: ReadonlyMap<string, Omit<UnitCopy, 'unit'>>;
  /**
   * Table → why it waits: the source has columns the target has not yet (a stream adds them).
   * The copy adds the tables it finds changed at their snapshots.
   */
  readonly deferred: Map<string, string>;
}

/** How the copy runs: its stream following or not, resumed or not. */
export interface CopyMode {
  readonly following: boolean;
  readonly resumed: boolean;
}

/**
 * The columns each table's COPY names, and in which format, from the source's columns and the
 * target's. Without a stream the target must have every source column. With one, a column the
 * target lacks was added on the source since the copy began, and the stream adds it first: the
 * table is deferred. A table gone (from the source by its name, or from the target on a resumed
 * copy, dropped there by the stream) gets an empty job: the check at its snapshot settles it.
 */
export function tableColumns(
  tables: readonly SourceTable[],
  goneFromSource: ReadonlySet<string>,
  onTarget: ReadonlyMap<string, ReadonlyMap<string, string>>,
  mode: CopyMode,
): TableColumns {
  const jobsByTable = new Map<string, Omit<UnitCopy, 'unit'>>();
  const deferred = new Map<string, string>();
  for (const t of tables) {
    const targetColumns = onTarget.get(t.qname);
    if (goneFromSource.has(t.qname) || (!targetColumns && mode.following && mode.resumed)) {
      jobsByTable.set(t.qname, { columns: [], binary: false });
      continue;
    }
    if (!targetColumns) throw new PgferryError('schema-conflict', `target: table ${t.qname} is missing after pre-data`, { side: 'target' });
    const missing = t.columns.filter((c) => !targetColumns.has(c.name)).map((c) => c.name);
    if (missing.length > 0 && mode.following) {
      deferred.set(t.qname, `the source has column(s) ${missing.join(', ')} the target has not yet`);
    } else if (missing.length > 0) {
      throw new PgferryError('schema-conflict', `target: table ${t.qname} has no column ${missing.join(', ')}`, {
        side: 'target',
        fix: 'add the columns on the target, or leave the table out with --exclude-table',
      });
    }
    jobsByTable.set(t.qname, { columns: t.columns.map((c) => c.name), binary: chooseFormat(t.columns, targetColumns) });
  }
  return { jobsByTable, deferred };
}
