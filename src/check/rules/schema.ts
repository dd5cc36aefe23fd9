import { listSome, plural, type Finding } from '../finding.js';
import type { SourceFacts, TargetFacts } from '../facts.js';
import { quoteIdent } from '../../plumbing/index.js';

/** What the schema copy will leave out: object kinds it cannot recreate, roles the target lacks. */
export function schemaFindings(source: SourceFacts, target: TargetFacts): Finding[] {
  const findings: Finding[] = [];
  if (source.unsupportedObjects.length > 0) {
    findings.push({
      id: 'schema.unsupported-objects',
      severity: 'warning',
      message: `${plural(source.unsupportedObjects.length, 'object')} the schema copy does not recreate: ${listSome(source.unsupportedObjects.map((u) => `${u.kind} ${u.name}`))}`,
      why: 'pgferry names what it cannot copy instead of dropping it silently; anything that uses these objects needs them on the target',
      fix: [...new Set(source.unsupportedObjects.map((u) => `${u.kind}: ${u.reason}`))].join('\n'),
    });
  }
  const missing = source.requiredRoles.filter((r) => !target.roles.has(r));
  if (missing.length > 0) {
    findings.push({
      id: 'target.missing-roles',
      severity: 'warning',
      message: `${plural(missing.length, 'role')} own or are granted objects in scope but do not exist on the target: ${listSome(missing)}`,
      why: 'roles are cluster-wide and not part of a database; without them ownership and GRANTs cannot be copied',
      fix: `${missing.map((r) => `CREATE ROLE ${quoteIdent(r)};`).join(' ')} (on the target, with the same attributes as on the source), or clone with --no-owner / --no-acl`,
    });
  }
  return findings;
}
