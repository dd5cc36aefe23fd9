import { withConnection, type ConnectionSpec } from '../config/index.js';
import { applyGlobals, type GlobalsReport } from './apply-globals.js';
import { planGlobals } from './plan-globals.js';
import { parseTablespaceLocations, type TablespaceLocations } from './plan-tablespaces.js';
import { readGlobals } from './read-globals.js';

export interface CarryGlobalsOptions {
  /** Where each source tablespace goes on the target: `name=dir` or `sourceDir=dir` entries, or the parsed map. */
  readonly tablespaceLocations?: readonly string[] | TablespaceLocations;
  /** Plan only: the report says what would be done, nothing is run. */
  readonly dryRun?: boolean;
}

/**
 * Carries the source instance's global objects to the target instance before any database is
 * synced: roles (attributes, password verifiers, comments), memberships, tablespaces, the named
 * databases (created from template0 with the source's encoding, locale, owner, connection limit
 * and comment), role settings and those databases' settings. Idempotent: it compares both sides
 * and does only what differs, so a rerun after a crash goes on and a second run does nothing.
 * Never drops or revokes anything.
 */
export async function carryGlobals(
  source: ConnectionSpec,
  target: ConnectionSpec,
  databases: readonly string[],
  options: CarryGlobalsOptions = {},
): Promise<GlobalsReport> {
  const locations = locationsOf(options.tablespaceLocations);
  const sourceGlobals = await withConnection(source, async ({ client }) => readGlobals(client));
  return withConnection(target, async ({ client }) => {
    const plan = planGlobals(sourceGlobals, await readGlobals(client), databases, locations);
    if (options.dryRun === true) {
      return {
        created: [...new Set(plan.steps.filter((s) => s.action === 'create').map((s) => s.object))],
        altered: [...new Set(plan.steps.filter((s) => s.action === 'alter').map((s) => s.object))],
        skipped: plan.skipped,
        warnings: plan.warnings,
        passwordsToSet: plan.passwordsToSet,
        statements: 0,
      };
    }
    return applyGlobals(client, plan);
  });
}

function locationsOf(given: CarryGlobalsOptions['tablespaceLocations']): TablespaceLocations {
  if (given === undefined) return new Map();
  return isEntryList(given) ? parseTablespaceLocations(given) : given;
}

/** Array.isArray does not narrow a readonly array out of a union. */
function isEntryList(given: readonly string[] | TablespaceLocations): given is readonly string[] {
  return Array.isArray(given);
}
