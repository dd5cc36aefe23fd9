/**
 * A statement shown to a user inside a one-line message (a drain that names what a session
 * runs, a failed query's text): whitespace folded to single spaces, cut at `maxLength`
 * characters with an ellipsis.
 */
export function oneLine(sql: string, maxLength: number): string {
  const flat = sql.replace(/\s+/g, ' ').trim();
  return flat.length > maxLength ? `${flat.slice(0, maxLength - 1)}…` : flat;
}
