/**
 * The corpus (issue 30): pagila, the best-known sample database — a domain column, an enum,
 * arrays, a tsvector with a GiST index and a trigger that fills it, a partitioned table,
 * circular foreign keys, views, a materialized view, SECURITY DEFINER functions, an aggregate,
 * the public schema owned by postgres — with its data, through every path, 14 → 15 (pg_dump 15,
 * the oracle, reads both).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeCorpus, readTransactions } from '../harness/corpus.js';

const PAGILA = fileURLToPath(new URL('../../../test/fixtures/pagila/', import.meta.url));

describeCorpus(
  {
    name: 'pagila with data',
    files: [join(PAGILA, 'pagila-schema.sql'), join(PAGILA, 'pagila-data.sql')],
    changes: readTransactions(join(PAGILA, 'pagila-changes.sql')),
    changesBack: readTransactions(join(PAGILA, 'pagila-changes-back.sql')),
  },
  14,
  15,
);
