import type { Finding } from '../finding.js';
import type { SourceFacts, TargetFacts } from '../facts.js';
import { REPLICATION_EXTENSIONS } from '../../catalog/index.js';
import { quoteIdent } from '../../plumbing/index.js';

const MACHINERY: ReadonlySet<string> = new Set(REPLICATION_EXTENSIONS);

export function extensionFindings(source: SourceFacts, target: TargetFacts): Finding[] {
  const findings: Finding[] = [];
  for (const { name, version } of source.extensions) {
    if (MACHINERY.has(name)) {
      findings.push({
        id: 'extensions.replication-machinery-left-out',
        severity: 'info',
        message: `extension "${name}" ${version} on the source is replication machinery: pgferry leaves it, its schema and its rows out`,
        why: "its nodes, subscriptions and queues describe the source's own replication; the target must not inherit them",
        fix: `nothing to do; to replicate from the target after the cut-over, set ${name} up there anew`,
      });
      continue;
    }
    const versions = target.availableExtensions.get(name);
    if (versions === undefined) {
      findings.push({
        id: 'extensions.missing-on-target',
        severity: 'error',
        message: `extension "${name}" ${version} is installed on the source, and the target cannot install it`,
        why: 'objects and columns that use the extension cannot be created on the target',
        fix: [
          `install the extension's files on the target server (the ${name} package built for PostgreSQL ${target.server.major}); on a managed service, check that it supports "${name}" and allow it (azure.extensions on Azure, the supported-extensions list on RDS and Cloud SQL)`,
          `or, if nothing uses it, drop it on the source: DROP EXTENSION ${quoteIdent(name)};`,
        ].join('\n'),
      });
    } else if (!versions.has(version)) {
      findings.push({
        id: 'extensions.version-differs',
        severity: 'warning',
        message: `extension "${name}" is ${version} on the source; the target offers ${[...versions].sort().join(', ')}`,
        why: "pgferry creates the version the target has; its functions and types may differ from the source's",
        fix: `check the extension's release notes between the versions, or update it on the source first: ALTER EXTENSION ${quoteIdent(name)} UPDATE;`,
      });
    }
  }
  return findings;
}
