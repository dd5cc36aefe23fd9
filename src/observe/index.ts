export { readStatusReport } from './status-report.js';
export type { StatusReport, StatusJson } from './status-report.js';
export { MigrationMetrics } from './metrics.js';
export type { LagSample, AppliedTotals } from './metrics.js';
export { MeteredProgress } from './progress.js';
export { StatusServer, parseListen } from './server.js';
export type { ListenAddress } from './server.js';
export { InstanceMetrics } from './instance-metrics.js';
