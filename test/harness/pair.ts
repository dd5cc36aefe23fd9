import { after, before } from 'node:test';
import type { MajorVersion } from './binaries.js';
import { killStrayPgferry } from './cli.js';
import { startClusters, type Cluster, type ClusterOptions } from './cluster.js';

/** The source and target clusters of a describe block, started before its tests and stopped after. */
export interface ClusterPair {
  readonly source: Cluster;
  readonly target: Cluster;
}

/** A bare major version means a server of that version with the harness's settings. */
export function asClusterOptions(server: MajorVersion | ClusterOptions): ClusterOptions {
  return typeof server === 'number' ? { version: server } : server;
}

/** Call inside `describe`: registers the hooks and returns the pair, usable once the tests run. */
export function useClusterPair(from: MajorVersion | ClusterOptions, to: MajorVersion | ClusterOptions): ClusterPair {
  let clusters: Cluster[] = [];
  before(async () => {
    clusters = await startClusters([asClusterOptions(from), asClusterOptions(to)]);
  });
  after(async () => {
    killStrayPgferry();
    await Promise.all(clusters.map((c) => c.stop()));
  });
  return {
    get source() {
      return clusters[0]!;
    },
    get target() {
      return clusters[1]!;
    },
  };
}
