/**
 * PgBouncer in a cut-over: its admin console, its configuration file, and the switch that
 * pauses the pooled databases, points them at the target and resumes them (or undoes all of it).
 */
export { PoolSwitch } from './switch.js';
export type { PoolMove, PoolOptions, PoolReport, PoolTimings } from './switch.js';
export { PoolConsole } from './console.js';
export type { PooledDatabase } from './console.js';
export { PoolConfigFile } from './config-file.js';
export { findDatabaseEntry, parseSettings, pointsTo, repoint } from './ini.js';
export type { DatabaseEntry, PoolTarget } from './ini.js';
export { startWatchdog, runWatchdog } from './watchdog.js';
export type { Watchdog } from './watchdog.js';
