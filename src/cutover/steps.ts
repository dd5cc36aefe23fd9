import { performance } from 'node:perf_hooks';

/**
 * The cut-over's steps, in the order they run (run.ts tells what each does). Each is timed
 * into the report under its name, and a failure is reported as at the step it happened in.
 */
export type CutoverStepName =
  | 'catch up'
  | 'way back'
  | 'large objects ahead'
  | 'record changes'
  /** Indexes made for the check inside the freeze on keyless tables no index narrows (dropped after). */
  | 'index keyless tables'
  | 'verify ahead'
  | 'changes ahead'
  | 'pause'
  | 'freeze'
  | 'drain'
  | 'fence'
  /** Inside 'fence': from the fence emitted on the source to sync's commit of it on the target (its round trip). */
  | 'fence applied'
  | 'sequences'
  | 'large objects'
  | 'verify'
  | 'stop sync'
  | 'late writes'
  | 'hand over'
  | 'repoint'
  | 'unfreeze target'
  | 'resume';

export interface CutoverStep {
  readonly step: CutoverStepName;
  readonly ms: number;
}

/** Runs the cut-over's steps one at a time: times each, and remembers which one it is at. */
export class CutoverSteps {
  private readonly done: CutoverStep[] = [];
  /** What fails before the first step (the freeze's plan) is reported as at the catch-up. */
  private at: CutoverStepName = 'catch up';
  /** The first step that failed: with steps run in branches at once, the last one begun may not be it. */
  private failed: CutoverStepName | undefined;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Runs one step's work, timed; a step that fails is timed too. */
  async run<T>(name: CutoverStepName, work: () => Promise<T>): Promise<T> {
    this.at = name;
    const started = this.now();
    try {
      return await work();
    } catch (error) {
      this.failed ??= name;
      throw error;
    } finally {
      this.done.push({ step: name, ms: round(this.now() - started) });
    }
  }

  /**
   * A step run alongside the one under way (the sequences while the fence travels): timed into
   * the report under its own name; a failure in it is reported as at the step under way.
   */
  async alongside<T>(name: CutoverStepName, work: () => Promise<T>): Promise<T> {
    const started = this.now();
    try {
      return await work();
    } finally {
      this.done.push({ step: name, ms: round(this.now() - started) });
    }
  }

  /**
   * A step taken once for several databases (PgBouncer's pause, when one pool serves them all):
   * timed into each one's steps, and a failure in it is at that step for each.
   */
  static async together<T>(all: readonly CutoverSteps[], name: CutoverStepName, work: () => Promise<T>): Promise<T> {
    const now = all[0]?.now ?? (() => performance.now());
    const started = now();
    for (const steps of all) steps.at = name;
    try {
      return await work();
    } finally {
      const ms = round(now() - started);
      for (const steps of all) steps.done.push({ step: name, ms });
    }
  }

  /** A step the options leave out (`--verify none`): not timed, but what fails after it still fails at it. */
  skip(name: CutoverStepName): void {
    this.at = name;
  }

  /** Where a failure happened: the first step that failed, else the step under way (or the last one begun). */
  get current(): CutoverStepName {
    return this.failed ?? this.at;
  }

  /** The steps run so far, in order, with their times. */
  get timed(): readonly CutoverStep[] {
    return this.done;
  }
}

/** Milliseconds to the microsecond, as the report shows them. */
export function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
