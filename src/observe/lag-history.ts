/** One point of the lag chart. */
export interface LagPoint {
  /** Milliseconds since the epoch. */
  readonly at: number;
  readonly lagSeconds: number | null;
  /** The stream's own lag, to the millisecond (sync/stream-lag.ts): the chart draws it where known. */
  readonly streamLagMs: number | null;
  readonly lagBytes: number;
}

/**
 * The last hour of lag, for the status page's chart: one point per `everyMs` at most (the
 * monitor measures once a second; one point in two is plenty to draw, 1,800 an hour).
 */
export class LagHistory {
  private readonly points: LagPoint[] = [];

  constructor(
    private readonly keepMs = 60 * 60_000,
    private readonly everyMs = 2_000,
  ) {}

  add(point: LagPoint): void {
    const last = this.points.at(-1);
    if (last && point.at - last.at < this.everyMs) return;
    this.points.push(point);
    while (this.points.length > 0 && point.at - this.points[0]!.at > this.keepMs) this.points.shift();
  }

  get all(): readonly LagPoint[] {
    return this.points;
  }
}
