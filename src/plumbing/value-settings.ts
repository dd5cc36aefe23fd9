import { quoteLiteral } from './quote.js';

/**
 * The session settings a value's text depends on, pinned on every session that prints values
 * for another server to read back (the walsender, the clone's text COPY) or reads them (the
 * apply, the clone's target): dates in ISO, the postgres interval style, floats printed
 * exactly, bytea in hex, times in UTC, money without a locale's symbols, and XML read as
 * content (a fragment or a document). Whatever the role's or database's own defaults on either
 * side, a value then reads back as the value it was.
 */
export const TEXT_VALUE_SETTINGS: Readonly<Record<string, string>> = {
  datestyle: 'ISO, YMD',
  intervalstyle: 'postgres',
  extra_float_digits: '3',
  bytea_output: 'hex',
  timezone: 'UTC',
  lc_monetary: 'C',
  xmloption: 'content',
};

/** `SELECT set_config(…)` for these settings (and any others given), for sessions set up after connecting. */
export function setConfigSql(settings: Readonly<Record<string, string>>): string {
  return `SELECT ${Object.entries(settings)
    .map(([name, value]) => `set_config(${quoteLiteral(name)}, ${quoteLiteral(value)}, false)`)
    .join(', ')}`;
}
