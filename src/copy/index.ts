export { clone } from './clone.js';
export type { CloneOptions, CloneSummary, TableSummary } from './clone.js';
export { TerminalProgress, LogProgress } from './progress.js';
export type { CopyProgress } from './progress.js';
export { planUnits, partsFor } from './plan.js';
export type { CopyUnit, TableToCopy, SplitBy } from './plan.js';
export { LargeObjectSync } from './large-objects.js';
export type { LargeObjectReconcile } from './large-objects.js';
