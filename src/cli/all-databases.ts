import { withConnection, type ConnectionSpec } from '../config/index.js';
import { databasesToMigrate, failedIn, inDatabase, readDatabases, type DatabaseFilter } from '../instance/index.js';

/** One database of an `--all-databases` command, reached on both instances. */
export interface DatabasePair {
  readonly database: string;
  readonly source: ConnectionSpec;
  readonly target: ConnectionSpec;
}

/** The databases the filter selects on `listedOn` (the source, or the target for `status`), each on both sides. */
export async function databasePairs(
  source: ConnectionSpec | undefined,
  target: ConnectionSpec,
  filter: DatabaseFilter,
): Promise<DatabasePair[]> {
  const databases = await databasesToMigrate(source ?? target, filter);
  return databases.map((database) => ({
    database,
    source: inDatabase(source ?? target, database),
    target: inDatabase(target, database),
  }));
}

/** The selected databases the target instance lacks (none, once the instance's global objects are carried). */
export async function missingOnTarget(target: ConnectionSpec, databases: readonly string[]): Promise<string[]> {
  const present = new Set((await withConnection(target, ({ client }) => readDatabases(client))).map((d) => d.name));
  return databases.filter((database) => !present.has(database));
}

/**
 * `work` for each database in turn, in name order; a failure is said with the database's name.
 * Sequential on purpose: status, verify and check are reads whose cost is on the servers, and
 * their own parallelism (verify's --jobs) already works within one database.
 */
export async function eachDatabase<T>(
  pairs: readonly DatabasePair[],
  work: (pair: DatabasePair) => Promise<T>,
): Promise<Array<{ readonly database: string; readonly result: T }>> {
  const results: Array<{ readonly database: string; readonly result: T }> = [];
  for (const pair of pairs) {
    try {
      results.push({ database: pair.database, result: await work(pair) });
    } catch (error) {
      throw failedIn(pair.database, error);
    }
  }
  return results;
}
