import { quoteIdent } from '../plumbing/index.js';
import { isCarriedDatabaseSetting, settingOf } from '../schema/index.js';
import type { Globals, RoleSetting } from './globals-model.js';
import { step, type PlanPart, type Step } from './plan-model.js';

function nameOf(setting: string): string {
  return setting.slice(0, setting.indexOf('='));
}

function key(s: RoleSetting): string {
  return `${s.role ?? ''}\u0000${s.database ?? ''}\u0000${nameOf(s.setting).toLowerCase()}`;
}

/** The statement that makes a setting so: ALTER ROLE … [IN DATABASE …] SET, or ALTER DATABASE … SET. */
export function settingSql(s: RoleSetting): string {
  const { name, rendered } = settingOf(s.setting);
  const where =
    s.role === null
      ? `DATABASE ${quoteIdent(s.database ?? '')}`
      : `ROLE ${quoteIdent(s.role)}${s.database === null ? '' : ` IN DATABASE ${quoteIdent(s.database)}`}`;
  return `ALTER ${where} SET ${quoteIdent(name)} TO ${rendered}`;
}

/**
 * Role settings (everywhere, and in the databases carried) and the carried databases' own
 * settings that the target lacks or holds with another value. A setting the target has and the
 * source lacks stays; the cut-over's read-only freeze never travels; a parameter the target's
 * version does not know is a warning.
 */
export function planSettings(source: Globals, target: Globals, databases: readonly string[], carriedRoles: ReadonlySet<string>): PlanPart {
  const onTarget = new Map(target.settings.map((s) => [key(s), s.setting]));
  const steps: Step[] = [];
  const warnings: string[] = [];
  for (const s of source.settings) {
    if (s.database !== null && !databases.includes(s.database)) continue;
    if (s.role !== null && !carriedRoles.has(s.role)) continue;
    if (s.role === null && (s.database === null || !isCarriedDatabaseSetting(nameOf(s.setting)))) continue;
    if (onTarget.get(key(s)) === s.setting) continue;
    const name = nameOf(s.setting);
    const object = s.role === null ? `database ${s.database ?? ''}` : `role ${s.role}`;
    if (!name.includes('.') && !target.parameters.has(name.toLowerCase())) {
      warnings.push(`${object}: setting ${name} not carried: the target's PostgreSQL ${target.major} has no such parameter`);
      continue;
    }
    steps.push(step(object, 'alter', settingSql(s)));
  }
  return { steps, skipped: [], warnings };
}
