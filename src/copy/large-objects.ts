import type pg from 'pg';
import { quoteIdent, quoteLiteral } from '../plumbing/index.js';

/** Read and written a piece at a time, so an object of any size costs this much memory. */
const CHUNK_BYTES = 1024 * 1024;

export interface LargeObjectCopy {
  readonly objects: number;
  readonly bytes: number;
  /** Owners and grantees missing on the target: those owners and grants were left out. */
  readonly missingRoles: readonly string[];
}

/** A large object's description on one side: what is copied with its content. */
interface LargeObjectMeta {
  readonly oid: string;
  readonly owner: string;
  readonly comment: string | null;
  readonly acl: Array<{ grantee: string; privilege: string; grantable: boolean }> | null;
}

/** Each large object's description, with `extra` columns of pg_largeobject_metadata m. */
const metaSql = (
  extra = '',
) => `SELECT m.oid::text${extra}, pg_get_userbyid(m.lomowner) AS owner, obj_description(m.oid, 'pg_largeobject') AS comment,
            (SELECT json_agg(json_build_object('grantee', CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
                                               'privilege', a.privilege_type, 'grantable', a.is_grantable)
                             ORDER BY CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END, a.privilege_type)
               FROM aclexplode(m.lomacl) a WHERE a.grantee <> m.lomowner) AS acl
       FROM pg_largeobject_metadata m`;

/**
 * Large objects (`lo_*`, the oids an `oid` column points at) are in no table logical
 * replication or COPY reaches: each is read at the copy's snapshot through `source` (the
 * session holding it) and made on the target under the same oid, with its owner, grants and
 * comment. One already there under that oid (a rerun) is made again. Changes after the
 * snapshot are in no change stream either: the cut-over reconciles them inside its freeze
 * (reconcileLargeObjects, below).
 */
export async function copyLargeObjects(source: pg.Client, target: pg.Client): Promise<LargeObjectCopy> {
  const { rows } = await source.query<LargeObjectMeta>(`${metaSql()} ORDER BY m.oid`);
  if (rows.length === 0) return { objects: 0, bytes: 0, missingRoles: [] };
  const copier = await LargeObjectCopier.on(target);
  for (const lo of rows) await copier.copy(source, lo);
  return { objects: rows.length, bytes: copier.bytes, missingRoles: copier.missingRoles };
}

/** Makes large objects on the target as they are on a source, one transaction each. */
class LargeObjectCopier {
  bytes = 0;
  private readonly missing = new Set<string>();

  private constructor(
    private readonly target: pg.Client,
    private readonly roles: ReadonlySet<string>,
  ) {}

  static async on(target: pg.Client): Promise<LargeObjectCopier> {
    const { rows } = await target.query<{ rolname: string }>('SELECT rolname FROM pg_roles');
    return new LargeObjectCopier(target, new Set(rows.map((r) => r.rolname)));
  }

  /** Owners and grantees missing on the target: those owners and grants were left out. */
  get missingRoles(): string[] {
    return [...this.missing].sort();
  }

  async copy(source: pg.Client, lo: LargeObjectMeta): Promise<void> {
    const target = this.target;
    await target.query('BEGIN');
    try {
      await target.query(`SELECT lo_unlink(oid) FROM pg_largeobject_metadata WHERE oid = $1::oid`, [lo.oid]);
      await target.query(`SELECT lo_create($1::oid)`, [lo.oid]);
      for (let offset = 0; ; offset += CHUNK_BYTES) {
        const { rows: chunk } = await source.query<{ data: Buffer }>(`SELECT lo_get($1::oid, $2, $3) AS data`, [
          lo.oid,
          offset,
          CHUNK_BYTES,
        ]);
        const data = chunk[0]!.data;
        if (data.length === 0) break;
        await target.query(`SELECT lo_put($1::oid, $2, $3)`, [lo.oid, offset, data]);
        this.bytes += data.length;
        if (data.length < CHUNK_BYTES) break;
      }
      if (this.roles.has(lo.owner)) await target.query(`ALTER LARGE OBJECT ${Number(lo.oid)} OWNER TO ${quoteIdent(lo.owner)}`);
      else this.missing.add(lo.owner);
      for (const entry of lo.acl ?? []) {
        if (entry.grantee !== 'PUBLIC' && !this.roles.has(entry.grantee)) {
          this.missing.add(entry.grantee);
          continue;
        }
        const grantee = entry.grantee === 'PUBLIC' ? 'PUBLIC' : quoteIdent(entry.grantee);
        await target.query(
          `GRANT ${entry.privilege} ON LARGE OBJECT ${Number(lo.oid)} TO ${grantee}${entry.grantable ? ' WITH GRANT OPTION' : ''}`,
        );
      }
      if (lo.comment !== null) await target.query(`COMMENT ON LARGE OBJECT ${Number(lo.oid)} IS ${quoteLiteral(lo.comment)}`);
      await target.query('COMMIT');
    } catch (error) {
      await target.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }
}

/** What the cut-over's large-object step found different and made equal. */
export interface LargeObjectReconcile {
  /** Objects on both sides (after the step: the same on each). */
  readonly objects: number;
  readonly created: number;
  readonly changed: number;
  readonly removed: number;
  /** Bytes copied for the created and changed ones. */
  readonly bytes: number;
  readonly missingRoles: readonly string[];
}

/**
 * Large objects are in no change stream: their creations, writes and unlinks since the copy's
 * snapshot are found by comparing the two sides, and made on the target, in two passes of a
 * cut-over.
 *
 * - `compareAll`, before the freeze while writes go on: each side describes every object by
 *   owner, grants, comment and a digest of its content; one the target lacks or describes
 *   otherwise is copied again, one only the target has is unlinked. In the same statement as
 *   its digests the source gives each object's version: the transaction ids of its metadata row,
 *   its comment and every page (a write, an ALTER, a COMMENT makes a new row version).
 * - `carryChanges`, inside the freeze after the fence, when the source cannot change: only
 *   the source's versions are read again (no content, no target), and what changed since the
 *   first pass (made, written, unlinked, or copied while being written) is carried. Where
 *   pg_largeobject is not readable there are no versions, and this pass compares all again.
 */
export class LargeObjectSync {
  /** Each source object's version when compareAll read it. */
  private versions: Map<string, string> | undefined;

  private constructor(
    private readonly source: pg.Client,
    private readonly target: pg.Client,
    private readonly method: 'pages' | 'lo_get',
  ) {}

  static async between(source: pg.Client, target: pg.Client): Promise<LargeObjectSync> {
    const readable = await Promise.all([readsLargeObjectPages(source), readsLargeObjectPages(target)]);
    return new LargeObjectSync(source, target, readable.every(Boolean) ? 'pages' : 'lo_get');
  }

  async compareAll(): Promise<LargeObjectReconcile> {
    const [onSource, onTarget] = await Promise.all([
      describeLargeObjects(this.source, this.method, { withVersion: this.method === 'pages' }),
      describeLargeObjects(this.target, this.method, { withVersion: false }),
    ]);
    if (this.method === 'pages') this.versions = new Map([...onSource.values()].map((lo) => [lo.oid, lo.version!]));
    const toCopy = [...onSource.values()].filter((lo) => onTarget.get(lo.oid)?.fingerprint !== lo.fingerprint);
    const toRemove = [...onTarget.keys()].filter((oid) => !onSource.has(oid));
    return this.carry(onSource.size, toCopy, toRemove, (oid) => onTarget.has(oid));
  }

  async carryChanges(): Promise<LargeObjectReconcile> {
    const before = this.versions;
    if (!before) return this.compareAll();
    const { rows } = await this.source.query<{ oid: string; version: string }>(
      `SELECT m.oid::text, ${VERSION_SQL} AS version FROM pg_largeobject_metadata m`,
    );
    const now = new Map(rows.map((r) => [r.oid, r.version]));
    const changed = rows.filter((r) => before.get(r.oid) !== r.version).map((r) => r.oid);
    const toRemove = [...before.keys()].filter((oid) => !now.has(oid));
    const { rows: toCopy } =
      changed.length === 0
        ? { rows: [] }
        : await this.source.query<LargeObjectMeta>(`${metaSql()} WHERE m.oid = ANY ($1::oid[])`, [changed]);
    this.versions = now;
    return this.carry(now.size, toCopy, toRemove, (oid) => before.has(oid));
  }

  private async carry(
    objects: number,
    toCopy: readonly LargeObjectMeta[],
    toRemove: readonly string[],
    onTargetBefore: (oid: string) => boolean,
  ): Promise<LargeObjectReconcile> {
    const copier = toCopy.length > 0 ? await LargeObjectCopier.on(this.target) : undefined;
    for (const lo of toCopy) await copier!.copy(this.source, lo);
    if (toRemove.length > 0) {
      await this.target.query(`SELECT lo_unlink(oid) FROM pg_largeobject_metadata WHERE oid = ANY ($1::oid[])`, [toRemove]);
    }
    const created = toCopy.filter((lo) => !onTargetBefore(lo.oid)).length;
    return {
      objects,
      created,
      changed: toCopy.length - created,
      removed: toRemove.length,
      bytes: copier?.bytes ?? 0,
      missingRoles: copier?.missingRoles ?? [],
    };
  }
}

/**
 * An object's version on a source: its metadata row's, its comment's and its pages' transaction
 * ids (with the page numbers). Anything that changes what is copied of it writes one of those
 * rows anew; a row keeps its xmin through VACUUM and freezing.
 */
const VERSION_SQL = `md5(m.xmin::text
      || '/' || coalesce((SELECT d.xmin::text FROM pg_description d
                           WHERE d.classoid = 'pg_largeobject'::regclass AND d.objoid = m.oid AND d.objsubid = 0), '')
      || '/' || coalesce((SELECT string_agg(l.pageno::text || ':' || l.xmin::text, ',' ORDER BY l.pageno)
                            FROM pg_largeobject l WHERE l.loid = m.oid), ''))`;

/**
 * pg_largeobject itself is readable by superusers only (and whoever was granted it); reading
 * its pages digests an object of any size without holding it whole. Others read through
 * lo_get, which holds each object in memory (up to 1 GB) and needs SELECT on it.
 */
async function readsLargeObjectPages(client: pg.Client): Promise<boolean> {
  const { rows } = await client.query<{ ok: boolean }>(`SELECT has_table_privilege('pg_catalog.pg_largeobject', 'SELECT') AS ok`);
  return rows[0]!.ok;
}

/**
 * Each object with a fingerprint of what is copied: owner, grants, comment and content. Content
 * is digested as lo_get reads it, whatever its pages: the copy writes a hole (a write past the
 * end) as zeros, so from pg_largeobject each page is padded to the page size, a page of zeros is
 * left out like a hole, and the length goes alongside. Both sides are read the same way.
 */
async function describeLargeObjects(
  client: pg.Client,
  method: 'pages' | 'lo_get',
  { withVersion }: { readonly withVersion: boolean },
): Promise<Map<string, LargeObjectMeta & { readonly fingerprint: string; readonly version: string | undefined }>> {
  const digest =
    method === 'pages'
      ? `(SELECT md5(coalesce(string_agg(l.pageno::text || ':' || md5(p.padded), ',' ORDER BY l.pageno) FILTER (WHERE p.padded <> z.zeros), '')
                     || '/' || max(l.pageno::bigint * z.size + length(l.data))::text)
            FROM pg_largeobject l
           CROSS JOIN (SELECT current_setting('block_size')::int / 4 AS size, decode(repeat('00', current_setting('block_size')::int / 4), 'hex') AS zeros) z
           CROSS JOIN LATERAL (SELECT l.data || substring(z.zeros FROM 1 FOR z.size - length(l.data)) AS padded) p
           WHERE l.loid = m.oid)`
      : `md5(lo_get(m.oid))`;
  const { rows } = await client.query<LargeObjectMeta & { digest: string | null; version?: string }>(
    metaSql(`, ${digest} AS digest${withVersion ? `, ${VERSION_SQL} AS version` : ''}`),
  );
  // Grants by grantee and privilege (not aclitem text: its grantor is a role of each server).
  return new Map(
    rows.map((r) => [r.oid, { ...r, version: r.version, fingerprint: JSON.stringify([r.owner, r.acl, r.comment, r.digest]) }]),
  );
}
