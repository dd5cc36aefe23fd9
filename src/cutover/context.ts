import type pg from 'pg';
import type { ScopeFilter } from '../catalog/index.js';
import type { ConnectionSpec } from '../config/index.js';
import type { Logger } from '../log/index.js';
import type { PoolOptions } from '../pgbouncer/index.js';
import type { FreezeMode, FreezePlan } from './freeze.js';

/**
 * What the cut-over compares. `changes` (the default): every row by content before the freeze,
 * while sync streams, and inside it only the rows sync applied since (changes.ts). `counts`:
 * count(*) of every table inside the freeze; `full`: every row by content inside the freeze.
 * Both grow with the database; `changes` grows with the writes of the last moments.
 */
export type VerifyLevel = 'none' | 'counts' | 'full' | 'changes';

export interface CutoverOptions {
  readonly source: ConnectionSpec;
  readonly target: ConnectionSpec;
  readonly filter: ScopeFilter;
  readonly maxLagSeconds: number;
  readonly catchUpTimeoutMs: number;
  readonly freeze: FreezeMode;
  /** `--freeze revoke`: the roles whose write privileges are revoked. */
  readonly roles: readonly string[];
  readonly drainTimeoutMs: number;
  readonly fenceTimeoutMs: number;
  readonly sequenceMargin: bigint;
  readonly verify: VerifyLevel;
  readonly unfreezeSource: boolean;
  /**
   * Prepare the way back (way-back.ts): on by default, off with `--no-fallback`, and left out
   * when `unfreezeSource` makes the source writable.
   */
  readonly fallback: boolean;
  /**
   * With `--verify changes`: index the keyless tables no index narrows, for the check inside the
   * freeze (narrowing-indexes.ts). On unless `--no-check-indexes`; absent means on.
   */
  readonly checkIndexes?: boolean;
  /** Pause, repoint and resume this PgBouncer around the freeze (pgbouncer/switch.ts). */
  readonly pgbouncer?: PoolOptions;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
}

/**
 * A cut-over whose freeze is recorded on the target: what finishing it (finish.ts) or undoing
 * it (undo.ts) works with.
 */
export interface FreezeContext {
  readonly options: CutoverOptions;
  /** The cut-over's own sessions. */
  readonly source: pg.Client;
  readonly target: pg.Client;
  readonly plan: FreezePlan;
  /** The freeze's record on the target. */
  readonly cutoverId: number;
  /** Sync's backend on the source: never ended. */
  readonly spare: readonly number[];
  readonly log: Logger;
}
