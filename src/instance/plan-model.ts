import type { Globals } from './globals-model.js';

/**
 * What carrying the globals will do on the target, decided before anything is done (pure, and
 * unit-tested): statements in the order they must run, and what is skipped or warned about.
 */

/** What a failing statement means: the carry stops, or it is a warning (retried first when a later grant may enable it). */
export type OnFailure = 'stop' | 'warn' | 'retry';

export interface Step {
  /** What it is about, for the report: 'role app', 'database shop', 'membership of app in readers'. */
  readonly object: string;
  readonly action: 'create' | 'alter';
  readonly sql: string;
  /** The statement as it may be shown: a password verifier is never printed. */
  readonly shown: string;
  readonly onFailure: OnFailure;
  /** For 'stop': what the user can do about a refusal. */
  readonly fix?: string;
}

export interface Skipped {
  readonly object: string;
  readonly reason: string;
}

export interface PlanPart {
  readonly steps: readonly Step[];
  readonly skipped: readonly Skipped[];
  readonly warnings: readonly string[];
}

export interface GlobalsPlan extends PlanPart {
  /** Login roles whose passwords could not be read on the source: to be set by hand on the target. */
  readonly passwordsToSet: readonly string[];
}

/** A step whose statement holds nothing secret. */
export function step(object: string, action: Step['action'], sql: string, onFailure: OnFailure = 'warn', fix?: string): Step {
  return { object, action, sql, shown: sql, onFailure, ...(fix === undefined ? {} : { fix }) };
}

export function joinParts(parts: readonly PlanPart[]): PlanPart {
  return {
    steps: parts.flatMap((p) => p.steps),
    skipped: parts.flatMap((p) => p.skipped),
    warnings: parts.flatMap((p) => p.warnings),
  };
}

/**
 * Who owns on the target what a source role owns: the same role, except the source's bootstrap
 * superuser, which is the target's own (named postgres on one side, another name on the other).
 */
export function ownerOnTarget(owner: string, source: Pick<Globals, 'roles'>, target: Pick<Globals, 'roles'>): string {
  const sourceBootstrap = source.roles.find((r) => r.bootstrap)?.name;
  const targetBootstrap = target.roles.find((r) => r.bootstrap)?.name;
  return owner === sourceBootstrap && targetBootstrap !== undefined ? targetBootstrap : owner;
}
