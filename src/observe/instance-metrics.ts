import { AggregatorRegistry, collectDefaultMetrics, Registry } from 'prom-client';
import { MigrationMetrics } from './metrics.js';

/**
 * The metrics of `sync --all-databases`: one MigrationMetrics per database, its series labelled
 * with `database`, and the process metrics once. /metrics serves them as one exposition: the
 * families of every database are merged (a family may appear only once in Prometheus text), and
 * their series stay apart by their `database` label.
 */
export class InstanceMetrics {
  private readonly process = new Registry();
  readonly databases: ReadonlyMap<string, MigrationMetrics>;

  constructor(databases: readonly string[]) {
    collectDefaultMetrics({ register: this.process, prefix: 'pgferry_' });
    this.databases = new Map(databases.map((database) => [database, new MigrationMetrics(database)]));
  }

  of(database: string): MigrationMetrics {
    const metrics = this.databases.get(database);
    if (metrics === undefined) throw new Error(`no metrics for database ${database}`);
    return metrics;
  }

  async text(): Promise<{ readonly contentType: string; readonly body: string }> {
    const all = await Promise.all([this.process, ...[...this.databases.values()].map((m) => m.registry)].map((r) => r.getMetricsAsJSON()));
    // Series of different databases differ by their label, so the aggregation never adds two up.
    const merged = AggregatorRegistry.aggregate(all);
    return { contentType: merged.contentType, body: await merged.metrics() };
  }
}
