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

/**
 * Large objects (`lo_*`, the oids an `oid` column points at) are in no table logical
 * replication or COPY reaches: each is read at the copy's snapshot through `source` (the
 * session holding it) and made on the target under the same oid, with its owner, grants and
 * comment. One already there under that oid (a rerun) is made again. Changes after the
 * snapshot are in no change stream either: not carried yet (they are to be reconciled inside
 * the cut-over's freeze), and `check` says so.
 */
export async function copyLargeObjects(source: pg.Client, target: pg.Client): Promise<LargeObjectCopy> {
  const { rows } = await source.query<{
    oid: string;
    owner: string;
    comment: string | null;
    acl: Array<{ grantee: string; privilege: string; grantable: boolean }> | null;
  }>(
    `SELECT m.oid::text, pg_get_userbyid(m.lomowner) AS owner, obj_description(m.oid, 'pg_largeobject') AS comment,
            (SELECT json_agg(json_build_object('grantee', CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
                                               'privilege', a.privilege_type, 'grantable', a.is_grantable))
               FROM aclexplode(m.lomacl) a WHERE a.grantee <> m.lomowner) AS acl
       FROM pg_largeobject_metadata m ORDER BY m.oid`,
  );
  if (rows.length === 0) return { objects: 0, bytes: 0, missingRoles: [] };
  const roles = new Set((await target.query<{ rolname: string }>('SELECT rolname FROM pg_roles')).rows.map((r) => r.rolname));
  const missing = new Set<string>();
  let bytes = 0;
  for (const lo of rows) {
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
        bytes += data.length;
        if (data.length < CHUNK_BYTES) break;
      }
      if (roles.has(lo.owner)) await target.query(`ALTER LARGE OBJECT ${Number(lo.oid)} OWNER TO ${quoteIdent(lo.owner)}`);
      else missing.add(lo.owner);
      for (const entry of lo.acl ?? []) {
        if (entry.grantee !== 'PUBLIC' && !roles.has(entry.grantee)) {
          missing.add(entry.grantee);
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
  return { objects: rows.length, bytes, missingRoles: [...missing].sort() };
}
