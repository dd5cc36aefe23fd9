import { OLDEST_SOURCE_MAJOR } from '../../catalog/index.js';
import type { Finding } from '../finding.js';
import type { SourceFacts, TargetFacts } from '../facts.js';

/** Versions of both sides: what logical decoding can do depends on them. */
export function versionFindings(source: SourceFacts, target: TargetFacts): Finding[] {
  const findings: Finding[] = [];
  const s = source.server;
  const t = target.server;
  if (s.major < OLDEST_SOURCE_MAJOR) {
    findings.push({
      id: 'source.version',
      severity: 'error',
      message: `the source runs PostgreSQL ${s.version}; pgferry needs PostgreSQL ${OLDEST_SOURCE_MAJOR} or newer on the source`,
      why: 'the pgoutput logical decoding plugin and publications first shipped in PostgreSQL 10',
      fix: `upgrade the source to PostgreSQL ${OLDEST_SOURCE_MAJOR} or newer in place (pg_upgrade) first, or move it with pg_dump and a maintenance window`,
    });
  } else {
    findings.push({
      id: 'source.version',
      severity: 'info',
      message: `source: PostgreSQL ${s.version}, database "${s.database}" as "${s.currentUser}"`,
      why: 'the source version decides which pgoutput protocol and copy strategies are available',
      fix: 'nothing to do',
    });
  }
  findings.push({
    id: 'target.version',
    severity: 'info',
    message: `target: PostgreSQL ${t.version}, database "${t.database}" as "${t.currentUser}"`,
    why: 'the target version decides which schema features can be recreated',
    fix: 'nothing to do',
  });
  if (t.major < s.major) {
    findings.push({
      id: 'target.older-than-source',
      severity: 'warning',
      message: `the target (PostgreSQL ${t.version}) is older than the source (PostgreSQL ${s.version})`,
      why:
        'PostgreSQL supports moving to the same or a newer major version; going back, the schema the source ' +
        'describes may use syntax, types, functions or options the older target does not know, and such objects fail to create',
      fix: `migrate to a target running PostgreSQL ${s.major} or newer, or review the schema for features newer than PostgreSQL ${t.major} and run pgferry clone --schema-only against a scratch database to see what fails`,
    });
  }
  return findings;
}
