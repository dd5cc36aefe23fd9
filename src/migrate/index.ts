export { migrate, migrateAllDatabases } from './run.js';
export type { MigrateOptions, MigrateReport, MigrateAllOptions, MigrateAllReport, MigrateCutoverSettings } from './run.js';
