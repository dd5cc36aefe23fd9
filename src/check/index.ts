export { runCheck, evaluate } from './run.js';
export type { CheckOptions } from './run.js';
export { bySeverity, listSome } from './finding.js';
export type { CheckReport, Finding, Severity, SideSummary } from './finding.js';
export type { SourceFacts, TargetFacts } from './facts.js';
export { formatBytes } from './rules/size.js';
export { runInstanceCheck } from './instance.js';
export type { InstanceCheckOptions } from './instance.js';
