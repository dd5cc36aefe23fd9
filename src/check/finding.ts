export type Severity = 'error' | 'warning' | 'info';

/**
 * One thing `pgferry check` found. `error` blocks a migration, `warning` needs a decision,
 * `info` is worth knowing. `fix` is the exact thing to do, ready to paste where possible.
 */
export interface Finding {
  readonly id: string;
  readonly severity: Severity;
  readonly message: string;
  /** Why it matters for the migration. */
  readonly why: string;
  readonly fix: string;
}

export interface SideSummary {
  readonly connection: string;
  readonly version: string;
  readonly database: string;
}

export interface CheckReport {
  /** True when no finding is an error. */
  readonly ready: boolean;
  readonly source: SideSummary;
  readonly target: SideSummary;
  readonly findings: readonly Finding[];
}

const ORDER: Record<Severity, number> = { error: 0, warning: 1, info: 2 };

export function bySeverity(a: Finding, b: Finding): number {
  return ORDER[a.severity] - ORDER[b.severity];
}

/** Lists a few names and says how many more there are, so a message stays one readable line. */
export function listSome(names: readonly string[], shown = 10): string {
  if (names.length <= shown) return names.join(', ');
  return `${names.slice(0, shown).join(', ')} and ${names.length - shown} more`;
}

export function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}
