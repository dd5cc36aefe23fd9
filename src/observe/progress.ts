import type { CopyProgress } from '../copy/index.js';
import type { MigrationMetrics } from './metrics.js';

/** The copy's progress, counted into the metrics on its way to the bars or the log lines. */
export class MeteredProgress implements CopyProgress {
  constructor(
    private readonly inner: CopyProgress,
    private readonly metrics: MigrationMetrics,
  ) {}

  start(totalBytes: number, units: number): void {
    this.inner.start(totalBytes, units);
  }

  unitStarted(table: string, unit: string, estimatedBytes: number): void {
    this.inner.unitStarted(table, unit, estimatedBytes);
  }

  bytes(table: string, unit: string, count: number): void {
    this.metrics.copied(table, count);
    this.inner.bytes(table, unit, count);
  }

  unitDone(table: string, unit: string, rows: number): void {
    this.metrics.copiedRows(table, rows);
    this.inner.unitDone(table, unit, rows);
  }

  unitDeferred(table: string, unit: string, why: string): void {
    this.inner.unitDeferred(table, unit, why);
  }

  phase(name: string): void {
    this.metrics.copyPhase(name);
    this.inner.phase(name);
  }

  stop(): void {
    this.inner.stop();
  }
}
