export { cutover } from './run.js';
export type { CutoverOptions, CutoverReport, CutoverStep, VerifyLevel } from './run.js';
export type { SequenceSync } from './sequences.js';
export type { FreezeMode } from './freeze.js';
export { cleanup } from './cleanup.js';
export type { CleanupOptions, CleanupReport } from './cleanup.js';
