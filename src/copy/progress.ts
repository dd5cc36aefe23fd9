import cliProgress from 'cli-progress';
import type { Logger } from '../log/index.js';

/** What the copy tells whoever is watching. */
export interface CopyProgress {
  start(totalBytes: number, units: number): void;
  unitStarted(table: string, unit: string, estimatedBytes: number): void;
  bytes(table: string, unit: string, count: number): void;
  unitDone(table: string, unit: string, rows: number): void;
  /** Not copied in this round: the table changed on the source since the plan (table-at-snapshot.ts). */
  unitDeferred(table: string, unit: string, why: string): void;
  phase(name: string): void;
  stop(): void;
}

const MB = 1024 * 1024;

/** Bars on a terminal: one overall, one per unit being copied. */
export class TerminalProgress implements CopyProgress {
  private readonly bars = new cliProgress.MultiBar(
    {
      format: ' {label} |{bar}| {percentage}% {done}/{total} MB {speed} MB/s eta {eta_formatted}',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  private overall: cliProgress.SingleBar | undefined;
  private readonly perUnit = new Map<string, { bar: cliProgress.SingleBar; bytes: number }>();
  private copied = 0;
  private readonly started = performance.now();

  start(totalBytes: number, units: number): void {
    this.overall = this.bars.create(Math.max(1, Math.round(totalBytes / MB)), 0, {
      label: `all ${units} units`.padEnd(28),
      done: 0,
      speed: '0',
      total: Math.round(totalBytes / MB),
    });
  }

  unitStarted(table: string, unit: string, estimatedBytes: number): void {
    const label = `${table}${unit === 'whole' ? '' : ` ${unit}`}`.slice(0, 28).padEnd(28);
    const bar = this.bars.create(Math.max(1, Math.round(estimatedBytes / MB)), 0, {
      label,
      done: 0,
      speed: '0',
      total: Math.round(estimatedBytes / MB),
    });
    this.perUnit.set(`${table}/${unit}`, { bar, bytes: 0 });
  }

  bytes(table: string, unit: string, count: number): void {
    this.copied += count;
    const entry = this.perUnit.get(`${table}/${unit}`);
    if (entry) {
      entry.bytes += count;
      entry.bar.update(Math.round(entry.bytes / MB), { done: Math.round(entry.bytes / MB), speed: '' });
    }
    const seconds = (performance.now() - this.started) / 1000;
    this.overall?.update(Math.round(this.copied / MB), {
      done: Math.round(this.copied / MB),
      speed: (this.copied / MB / Math.max(seconds, 0.001)).toFixed(1),
    });
  }

  unitDone(table: string, unit: string): void {
    const entry = this.perUnit.get(`${table}/${unit}`);
    if (entry) {
      this.bars.remove(entry.bar);
      this.perUnit.delete(`${table}/${unit}`);
    }
  }

  unitDeferred(table: string, unit: string, why: string): void {
    this.unitDone(table, unit);
    this.bars.log(`${table}: deferred (${why})\n`);
  }

  phase(name: string): void {
    this.bars.log(`${name}\n`);
  }

  stop(): void {
    this.bars.stop();
  }
}

/** Not on a terminal: a structured log line every few seconds, and one per finished table. */
export class LogProgress implements CopyProgress {
  private total = 0;
  private copied = 0;
  private unitsDone = 0;
  private units = 0;
  private readonly started = performance.now();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 5000,
  ) {}

  start(totalBytes: number, units: number): void {
    this.total = totalBytes;
    this.units = units;
    this.timer = setInterval(() => this.report(), this.intervalMs);
    this.timer.unref();
  }

  unitStarted(): void {}

  bytes(_table: string, _unit: string, count: number): void {
    this.copied += count;
  }

  unitDone(table: string, unit: string, rows: number): void {
    this.unitsDone++;
    this.log.info({ table, unit, rows }, 'unit copied');
  }

  unitDeferred(table: string, unit: string, why: string): void {
    this.unitsDone++;
    this.log.info({ table, unit, why }, 'unit deferred: copied once the stream has brought its schema change');
  }

  phase(name: string): void {
    this.log.info({ phase: name }, 'phase');
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private report(): void {
    const seconds = (performance.now() - this.started) / 1000;
    const rate = this.copied / Math.max(seconds, 0.001);
    const eta = rate > 0 ? Math.max(0, (this.total - this.copied) / rate) : null;
    this.log.info(
      {
        copiedMB: Math.round(this.copied / MB),
        totalMB: Math.round(this.total / MB),
        unitsDone: this.unitsDone,
        units: this.units,
        mbPerSecond: Number((rate / MB).toFixed(1)),
        etaSeconds: eta === null ? null : Math.round(eta),
      },
      'copy progress',
    );
  }
}
