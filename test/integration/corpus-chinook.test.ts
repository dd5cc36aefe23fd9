/**
 * The corpus (issue 30): a music store in Chinook's shape — every identifier quoted and in mixed
 * case, a self-referencing key, composite keys, numeric money — with an application role and a
 * reporting role that own objects and hold table, column and default privileges, through every
 * path, 13 → 15 (pg_dump 15, the oracle, reads both).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeCorpus, readTransactions } from '../harness/corpus.js';

const CHINOOK = fileURLToPath(new URL('../../../test/fixtures/chinook/', import.meta.url));

describeCorpus(
  {
    name: 'a music store in the shape of Chinook, with roles and grants',
    files: [join(CHINOOK, 'chinook-schema.sql'), join(CHINOOK, 'chinook-data.sql')],
    changes: readTransactions(join(CHINOOK, 'chinook-changes.sql')),
    changesBack: readTransactions(join(CHINOOK, 'chinook-changes-back.sql')),
  },
  13,
  15,
);
