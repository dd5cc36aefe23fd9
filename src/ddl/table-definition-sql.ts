/**
 * A table's definition as jsonb (payload.ts `TableDefinition`), for the pg_class row aliased `c`.
 * The capture reads it on the source at the moment of a command, and the rebuild reads the
 * target's the same way, so the two compare field for field. Both run with search_path =
 * pg_catalog, so every deparsed name is qualified alike. A partitioned table lists its partitions
 * with their bounds: ATTACH and DETACH PARTITION change the parent, and run inside a function
 * (pg_partman's maintenance) only the partition list tells the target which. `attgenerated` is read through
 * to_jsonb: servers before 12 have no such column.
 */
export const TABLE_DEFINITION_JSON = `jsonb_build_object(
  'name', format('%I.%I', (SELECT n.nspname FROM pg_namespace n WHERE n.oid = c.relnamespace), c.relname),
  'columns', (SELECT coalesce(jsonb_agg(jsonb_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
                                                   'notNull', a.attnotnull, 'default', pg_get_expr(ad.adbin, ad.adrelid),
                                                   'identity', a.attidentity, 'generated', coalesce(to_jsonb(a) ->> 'attgenerated', ''))
                                        ORDER BY a.attnum), '[]')
                FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
  'constraints', (SELECT coalesce(jsonb_agg(jsonb_build_object('name', k.conname, 'definition', pg_get_constraintdef(k.oid)) ORDER BY k.conname), '[]')
                    FROM pg_constraint k WHERE k.conrelid = c.oid AND k.conislocal AND k.contype IN ('p', 'u', 'c', 'f', 'x')),
  'partitionOf', (SELECT format('%I.%I', pn.nspname, p.relname) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
                    JOIN pg_namespace pn ON pn.oid = p.relnamespace WHERE i.inhrelid = c.oid AND c.relispartition),
  'bound', CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END,
  'partitionKey', CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
  'partitions', CASE WHEN c.relkind = 'p' THEN (
      SELECT coalesce(jsonb_agg(jsonb_build_object('name', format('%I.%I', kn.nspname, k.relname), 'bound', pg_get_expr(k.relpartbound, k.oid))
                                ORDER BY kn.nspname, k.relname), '[]')
        FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid JOIN pg_namespace kn ON kn.oid = k.relnamespace
       WHERE i.inhparent = c.oid) END)`;
