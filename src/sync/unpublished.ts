import type pg from 'pg';
import type { Logger } from '../log/index.js';

/** How often the source is asked, and how often one finding is said again. */
const LOOK_EVERY_MS = 5_000;
const SAY_AGAIN_MS = 5 * 60_000;

export interface UnpublishedPartition {
  /** Quoted and qualified. */
  readonly partition: string;
  readonly parent: string;
}

/**
 * Partitions created or attached on the source after sync began (pg_partman's, a monthly job's):
 * the publication lists the leaf tables it began with, so these are in no publication and their
 * rows never reach the stream. Found by a sibling that is published while they are not.
 */
export async function unpublishedPartitions(source: pg.Client, publication: string): Promise<UnpublishedPartition[]> {
  const { rows } = await source.query<UnpublishedPartition>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS partition, format('%I.%I', pn.nspname, p.relname) AS parent
       FROM pg_inherits i
       JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
      WHERE c.relkind = 'r' AND c.relispartition
        AND NOT EXISTS (SELECT 1 FROM pg_publication_rel pr JOIN pg_publication pb ON pb.oid = pr.prpubid WHERE pb.pubname = $1 AND pr.prrelid = c.oid)
        AND EXISTS (SELECT 1 FROM pg_inherits s JOIN pg_publication_rel pr ON pr.prrelid = s.inhrelid JOIN pg_publication pb ON pb.oid = pr.prpubid
                     WHERE s.inhparent = i.inhparent AND pb.pubname = $1)
      ORDER BY 1`,
    [publication],
  );
  return rows;
}

/**
 * Looks every few seconds and says loudly what it finds: the target will miss these rows. (Streaming
 * new partitions and tables is the schema-change capability; until then, this is detected and said.)
 */
export class UnpublishedPartitionWatch {
  private lastLook = 0;
  private readonly said = new Map<string, number>();

  constructor(
    private readonly source: pg.Client,
    private readonly publication: string,
    private readonly logger: Logger,
  ) {}

  async look(now: number): Promise<void> {
    if (now - this.lastLook < LOOK_EVERY_MS) return;
    this.lastLook = now;
    const found = await unpublishedPartitions(this.source, this.publication);
    const due = found.filter((p) => now - (this.said.get(p.partition) ?? -Infinity) >= SAY_AGAIN_MS);
    if (due.length === 0) return;
    for (const p of due) this.said.set(p.partition, now);
    this.logger.error(
      { partitions: due.map((p) => `${p.partition} (of ${p.parent})`), publication: this.publication },
      `partitions created or attached on the source after sync started are not streamed: rows written to them will be missing on the target. ` +
        `Create each on the target and add it to the publication (ALTER PUBLICATION ${this.publication} ADD TABLE …) before it receives rows, ` +
        `or copy the rows it already holds by hand; a cut-over's verify counts will otherwise find the difference`,
    );
  }
}
