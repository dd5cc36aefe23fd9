import type pg from 'pg';
import { messageOf, PgferryError } from '../errors.js';
import { isConnectionEnded, isConnectionException, sqlState } from '../plumbing/index.js';
import type { GlobalsPlan, Skipped, Step } from './plan-model.js';

/** What carrying the globals did on the target. */
export interface GlobalsReport {
  /** Objects made on the target ('role app', 'database shop', 'membership of app in readers'). */
  readonly created: readonly string[];
  /** Objects that existed and were brought to the source's attributes, password, owner, settings. */
  readonly altered: readonly string[];
  readonly skipped: readonly Skipped[];
  readonly warnings: readonly string[];
  /** Login roles whose passwords could not be read on the source: set them on the target by hand. */
  readonly passwordsToSet: readonly string[];
  /** Statements run (0 on a rerun that finds everything in place). */
  readonly statements: number;
}

/**
 * Runs the plan on the target, each statement on its own (CREATE DATABASE and CREATE TABLESPACE
 * cannot run in a transaction; every statement is idempotent against a rerun because the plan
 * is made from what the target holds). A failure of a database or tablespace stops the carry;
 * anything else becomes a warning, as on a managed target some roles cannot be given everything.
 * Grants that fail are retried once others have run (a grant by a role needs its ADMIN first).
 */
export async function applyGlobals(target: pg.Client, plan: GlobalsPlan): Promise<GlobalsReport> {
  const created: string[] = [];
  const altered: string[] = [];
  const warnings = [...plan.warnings];
  let statements = 0;
  const run = async (s: Step): Promise<string | null> => {
    try {
      await target.query(s.sql);
      statements++;
      const into = s.action === 'create' ? created : altered;
      if (!into.includes(s.object) && !(s.action === 'alter' && created.includes(s.object))) into.push(s.object);
      return null;
    } catch (error) {
      // A lost session is no statement's refusal: nothing after it could run.
      if (isConnectionEnded(error) || isConnectionException(sqlState(error))) throw error;
      if (s.onFailure === 'stop') {
        // What stops the carry is the user's to fix: a locale, a directory, a privilege.
        throw new PgferryError('usage', `target: ${s.object}: ${s.shown} failed: ${messageOf(error)}`, {
          side: 'target',
          fix: s.fix,
          cause: error,
        });
      }
      return messageOf(error);
    }
  };
  let pending: Step[] = [];
  for (const s of plan.steps) {
    const error = await run(s);
    if (error === null) continue;
    if (s.onFailure === 'retry') pending.push(s);
    else warnings.push(`${s.object}: ${s.shown} failed: ${error}`);
  }
  while (pending.length > 0) {
    const still: Step[] = [];
    const errors: string[] = [];
    for (const s of pending) {
      const error = await run(s);
      if (error !== null) {
        still.push(s);
        errors.push(`${s.object}: ${s.shown} failed: ${error}`);
      }
    }
    if (still.length === pending.length) {
      warnings.push(...errors);
      break;
    }
    pending = still;
  }
  return { created, altered, skipped: plan.skipped, warnings, passwordsToSet: plan.passwordsToSet, statements };
}
