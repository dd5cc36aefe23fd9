export { migrate } from './run.js';
export type { MigrateOptions, MigrateReport } from './run.js';
