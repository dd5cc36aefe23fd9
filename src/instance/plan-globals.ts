import type { Globals } from './globals-model.js';
import { joinParts, type GlobalsPlan } from './plan-model.js';
import { planDatabases } from './plan-databases.js';
import { planMemberships, planRoles } from './plan-roles.js';
import { planSettings } from './plan-settings.js';
import { planTablespaces, type TablespaceLocations } from './plan-tablespaces.js';

/**
 * Everything carrying the globals does, in the order it must run: roles first (they own the
 * rest), tablespaces (databases live in them), databases, then memberships (a grant may name
 * any role) and settings (a setting in a database needs the database). Refusals (a locale the
 * target cannot make, a tablespace without a place) are thrown here, before anything is done.
 */
export function planGlobals(source: Globals, target: Globals, databases: readonly string[], locations: TablespaceLocations): GlobalsPlan {
  const roles = planRoles(source, target);
  const tablespaces = planTablespaces(source, target, locations);
  const dbs = planDatabases(source, target, databases);
  const memberships = planMemberships(source, target, roles.carried);
  const settings = planSettings(source, target, databases, roles.carried);
  const warnings: string[] = [];
  if (!source.passwordsReadable && roles.passwordsToSet.length > 0) {
    warnings.push(
      `source: the role ${source.currentUser} may not read pg_authid (a managed service hides it): the passwords of ${roles.passwordsToSet.join(', ')} are not carried; set each on the target with ALTER ROLE … PASSWORD`,
    );
  }
  const joined = joinParts([roles, tablespaces, dbs, memberships, settings]);
  return { ...joined, warnings: [...joined.warnings, ...warnings], passwordsToSet: roles.passwordsToSet };
}
