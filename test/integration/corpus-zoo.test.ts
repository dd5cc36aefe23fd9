/**
 * The corpus (issue 30): the type and object zoo with its data — every built-in type category,
 * domains over many bases and arrays of domains, enums, composites, ranges and multiranges,
 * extension types, ICU and nondeterministic collations, generated and identity columns,
 * inheritance, partition trees of every kind with default partitions, exclusion constraints,
 * deferrable keys, row security, triggers, rules, views with check options, materialized views,
 * large objects, owners, comments and grants everywhere — through every path, 15 → 15 (its
 * newest features need a 15 source; pg_dump 15, the oracle, reads nothing newer).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeCorpus, readTransactions } from '../harness/corpus.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));

describeCorpus(
  {
    name: 'the type and object zoo with data',
    files: ['schema-zoo.sql', 'schema-zoo-14.sql', 'schema-zoo-15.sql', 'schema-zoo-more.sql', 'schema-zoo-data.sql'].map((f) =>
      join(FIXTURES, f),
    ),
    changes: readTransactions(join(FIXTURES, 'schema-zoo-changes.sql')),
    changesBack: readTransactions(join(FIXTURES, 'schema-zoo-changes-back.sql')),
  },
  15,
  15,
);
