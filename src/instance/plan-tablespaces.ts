import { PgferryError, usageError } from '../errors.js';
import { quoteIdent, quoteLiteral } from '../plumbing/index.js';
import type { Globals } from './globals-model.js';
import { ownerOnTarget, step, type PlanPart, type Step } from './plan-model.js';

/** `--tablespace-location old=new`: old is the tablespace's name or its directory on the source. */
export type TablespaceLocations = ReadonlyMap<string, string>;

export function parseTablespaceLocations(entries: readonly string[]): TablespaceLocations {
  const map = new Map<string, string>();
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    const from = entry.slice(0, eq);
    const to = entry.slice(eq + 1);
    if (eq <= 0 || to === '' || !to.startsWith('/')) {
      throw usageError(
        `--tablespace-location "${entry}" is not <name or source directory>=<absolute directory on the target>`,
        'write it as --tablespace-location fast=/srv/pg/fast (the directory must exist, empty, owned by the target server’s OS user)',
      );
    }
    if (map.has(from)) throw usageError(`--tablespace-location names "${from}" twice`, 'give each tablespace one location');
    map.set(from, to);
  }
  return map;
}

/**
 * Tablespaces to create (at the location the user maps their source directory to: the source's
 * is on the source's machine) or align (owner, options, comment). A tablespace without a
 * location on the target is refused before anything is done.
 */
export function planTablespaces(source: Globals, target: Globals, locations: TablespaceLocations): PlanPart {
  const steps: Step[] = [];
  const warnings: string[] = [];
  const unplaced: string[] = [];
  const used = new Set<string>();
  for (const ts of source.tablespaces) {
    const existing = target.tablespaces.find((t) => t.name === ts.name);
    const object = `tablespace ${ts.name}`;
    const owner = ownerOnTarget(ts.owner, source, target);
    const name = quoteIdent(ts.name);
    const mapped = locations.get(ts.name) ?? locations.get(ts.location);
    if (locations.has(ts.name)) used.add(ts.name);
    if (locations.has(ts.location)) used.add(ts.location);
    if (existing === undefined) {
      if (mapped === undefined) {
        unplaced.push(`${ts.name} (at ${ts.location} on the source)`);
        continue;
      }
      const options = ts.options.length > 0 ? ` WITH (${ts.options.join(', ')})` : '';
      steps.push(
        step(
          object,
          'create',
          `CREATE TABLESPACE ${name} OWNER ${quoteIdent(owner)} LOCATION ${quoteLiteral(mapped)}${options}`,
          'stop',
          `make ${mapped} on the target's machine an empty directory owned by the server's OS user (or map ${ts.name} elsewhere with --tablespace-location), then run again`,
        ),
      );
    } else {
      if (mapped !== undefined && mapped !== existing.location) {
        warnings.push(`${object} exists on the target at ${existing.location}, not ${mapped}: kept where it is`);
      }
      if (existing.owner !== owner) steps.push(step(object, 'alter', `ALTER TABLESPACE ${name} OWNER TO ${quoteIdent(owner)}`));
      const missing = ts.options.filter((o) => !existing.options.includes(o));
      if (missing.length > 0) steps.push(step(object, 'alter', `ALTER TABLESPACE ${name} SET (${missing.join(', ')})`));
    }
    if (ts.comment !== null && existing?.comment !== ts.comment) {
      steps.push(step(object, existing === undefined ? 'create' : 'alter', `COMMENT ON TABLESPACE ${name} IS ${quoteLiteral(ts.comment)}`));
    }
  }
  for (const from of locations.keys()) {
    if (!used.has(from))
      throw usageError(
        `--tablespace-location names "${from}", which is no tablespace of the source (by name or directory)`,
        'check the name',
      );
  }
  if (unplaced.length > 0) {
    throw new PgferryError(
      'usage',
      `target: tablespace${unplaced.length > 1 ? 's' : ''} ${unplaced.join(', ')} need${unplaced.length > 1 ? '' : 's'} a directory on the target's machine`,
      {
        side: 'target',
        fix: `give each a place with --tablespace-location <name>=<empty directory on the target, owned by its server's OS user>, or create the tablespace on the target yourself (a managed service has only pg_default: then move its tables there)`,
      },
    );
  }
  return { steps, skipped: [], warnings };
}
