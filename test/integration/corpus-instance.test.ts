/**
 * The corpus (issues 30 and 32) as one server: pagila and the Chinook-shaped store, each in a
 * database of its own on one PostgreSQL 14 instance with their roles and a login role with a
 * SCRAM password, moved to 15 by the `--all-databases` commands (pg_dump 15, the oracle, reads
 * both; the zoo needs 15 on the source and is moved database by database in corpus-zoo).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readTransactions } from '../harness/corpus.js';
import { describeInstanceCorpus } from '../harness/corpus-instance.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));
const PAGILA = join(FIXTURES, 'pagila');
const CHINOOK = join(FIXTURES, 'chinook');

describeInstanceCorpus(
  [
    {
      database: 'pagila',
      fixture: {
        name: 'pagila with data',
        files: [join(PAGILA, 'pagila-schema.sql'), join(PAGILA, 'pagila-data.sql')],
        changes: readTransactions(join(PAGILA, 'pagila-changes.sql')),
        changesBack: readTransactions(join(PAGILA, 'pagila-changes-back.sql')),
      },
    },
    {
      database: 'chinook',
      fixture: {
        name: 'a music store in the shape of Chinook, with roles and grants',
        files: [join(CHINOOK, 'chinook-schema.sql'), join(CHINOOK, 'chinook-data.sql')],
        changes: readTransactions(join(CHINOOK, 'chinook-changes.sql')),
        changesBack: readTransactions(join(CHINOOK, 'chinook-changes-back.sql')),
      },
    },
  ],
  14,
  15,
);
