export { startCluster, startClusters, sweepAbandonedClusters, isAlive, Cluster } from './cluster.js';
export type { ClusterOptions, Setting } from './cluster.js';
export { MAJOR_VERSIONS, installation, unprivilegedUser } from './binaries.js';
export type { MajorVersion } from './binaries.js';
export { makeServerCertificate } from './certificates.js';
export { runPgferry } from './cli.js';
export type { CliResult } from './cli.js';
