import type { ScopeFilter } from '../catalog/index.js';
import type { ConnectionSpec } from '../config/index.js';
import type { Logger } from '../log/index.js';

export type VerifyMode = 'full' | 'counts';

export interface VerifyOptions {
  readonly source: ConnectionSpec;
  readonly target: ConnectionSpec;
  readonly filter: ScopeFilter;
  /** 'counts': exact count(*) per table on both sides and sequences, no content (cut-over's default). */
  readonly mode: VerifyMode;
  /** Tables compared at once, each with one session per side. */
  readonly jobs?: number;
  readonly logger: Logger;
  /** Rows named per table; past it the table is still 'different', the list is cut. Default 100. */
  readonly maxDifferences?: number;
  /**
   * Default true: when the target's pgferry.sync is streaming, differences are checked again once
   * the target has applied past the source position of the first check; only those that persist
   * are reported.
   */
  readonly recheckWhileSyncing?: boolean;
  /** How long the recheck waits for the target to pass that position. Default 60 s. */
  readonly recheckTimeoutSeconds?: number;
  /** Rows per key range in the first plan of a table (tuning; default 1,000,000). */
  readonly rowsPerRange?: number;
  readonly signal?: AbortSignal;
  /** In full mode, compare the schema too (default true); the cut-over's `--verify changes` compares rows only. */
  readonly compareSchema?: boolean;
}

/** A row's key columns by name, each value as the server's text output (null for SQL NULL). */
export type RowKey = Record<string, string | null>;

export type DifferenceKind = 'missing' | 'extra' | 'changed';

export interface Difference {
  /** missing: on the source, not on the target; extra: on the target only; changed: both, different content. */
  readonly kind: DifferenceKind;
  /** The key of a keyed table's row; for a keyless table the whole row (it is its own identity). */
  readonly key: RowKey | null;
  /** For 'changed': the columns whose text output differs. */
  readonly columns?: string[];
}

export type TableStatus = 'identical' | 'different' | 'missing-on-target' | 'error';

export interface TableResult {
  readonly name: string;
  readonly status: TableStatus;
  readonly sourceRows: number;
  readonly targetRows: number;
  readonly seconds: number;
  readonly differences: Difference[];
  /** More rows differ than were named (maxDifferences). */
  readonly truncated?: boolean;
  /** For 'error': what failed, with the side and the query. */
  readonly error?: string;
}

export type SequenceStatus = 'identical' | 'behind' | 'ahead' | 'missing-on-target';

export interface SequenceResult {
  readonly name: string;
  /** last_value, null when the sequence was never called (or is at its start after setval(…, false)). */
  readonly source: string | null;
  readonly target: string | null;
  readonly status: SequenceStatus;
  /**
   * Present on a sequence 'behind' that is not a difference: the target follows its source, whose
   * stream carries no sequence values. 'cutover': pgferry cutover sets it; 'return': the target is
   * an old primary following the new one through the way back, and the return sets it.
   */
  readonly setAt?: SequenceSetAt;
}

export type SequenceSetAt = 'cutover' | 'return';

export interface SchemaDifference {
  /** "kind name", e.g. "index public.film.film_pkey". */
  readonly object: string;
  readonly kind: DifferenceKind;
}

export interface VerifyReport {
  readonly identical: boolean;
  readonly mode: VerifyMode;
  readonly seconds: number;
  readonly tables: TableResult[];
  readonly sequences: SequenceResult[];
  readonly schema: SchemaDifference[];
  /** What the user should know about how the result was reached (rechecks, fallbacks, give-ups). */
  readonly notes: string[];
}
