import type { CheckReport, Finding, Severity } from '../check/index.js';

const LABEL: Record<Severity, string> = { error: 'ERROR', warning: 'WARNING', info: 'INFO' };

/** The human form of a check report: a table of findings, each with why and fix beneath. */
export function formatCheckReport(report: CheckReport): string {
  const lines: string[] = [];
  lines.push(`source  ${report.source.connection}  (PostgreSQL ${report.source.version})`);
  lines.push(`target  ${report.target.connection}  (PostgreSQL ${report.target.version})`);
  lines.push('');
  lines.push(formatFindings(report.findings));
  lines.push(verdict(report.findings, report.ready));
  return `${lines.join('\n')}\n`;
}

/** Findings as a table, each with why and fix beneath. */
export function formatFindings(findings: readonly Finding[]): string {
  const lines: string[] = [];
  const idWidth = Math.max(...findings.map((f) => f.id.length), 'CHECK'.length);
  lines.push(`${'SEVERITY'.padEnd(9)}${'CHECK'.padEnd(idWidth + 2)}FINDING`);
  const indent = ' '.repeat(9 + idWidth + 2);
  for (const finding of findings) {
    lines.push(`${LABEL[finding.severity].padEnd(9)}${finding.id.padEnd(idWidth + 2)}${finding.message}`);
    if (finding.severity !== 'info') {
      lines.push(`${indent}why: ${finding.why}`);
      lines.push(...prefixed(indent, 'fix: ', finding.fix));
    }
  }
  return `${lines.join('\n')}\n`;
}

function prefixed(indent: string, label: string, text: string): string[] {
  return text.split('\n').map((line, i) => `${indent}${i === 0 ? label : ' '.repeat(label.length)}${line}`);
}

function verdict(findings: readonly Finding[], ready: boolean): string {
  const count = (s: Severity) => findings.filter((f) => f.severity === s).length;
  const tally = `${count('error')} error(s), ${count('warning')} warning(s), ${count('info')} note(s)`;
  return ready
    ? `${tally}: ready to migrate${count('warning') > 0 ? ' (read the warnings first)' : ''}.`
    : `${tally}: not ready — fix the errors above and run pgferry check again.`;
}
