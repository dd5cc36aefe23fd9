export { selectDatabases, readDatabases, databasesToMigrate, MAINTENANCE_DATABASES } from './databases.js';
export type { DatabaseFilter, DatabaseEntry } from './databases.js';
export { inDatabase } from './connections.js';
export { failedIn } from './errors.js';
