export { cutover, cutoverDatabases } from './run.js';
export type { InstanceCutoverOptions, InstanceCutoverReport, DatabaseCutoverReport } from './run.js';
export type { CutoverOptions, VerifyLevel } from './context.js';
export type { CutoverReport } from './finish.js';
export type { CutoverStep, CutoverStepName } from './steps.js';
export type { SequenceSync } from './sequences.js';
export type { FreezeMode } from './freeze.js';
export { cleanup } from './cleanup.js';
export type { CleanupOptions, CleanupReport } from './cleanup.js';
// The drain, for the physical cut-over (physical/), which freezes the whole server its own way.
export { drainSessions } from './drain.js';
export type { DrainReport } from './drain.js';
// A failure in one database of an instance's command, named so (cli: cleanup --all-databases).
// The name of the index a cut-over makes for its check on a keyless table (tests find what a killed one left by it).
export { narrowingIndexName } from './narrowing-indexes.js';
