/**
 * The code and text of an error a test caught, read without casts and without pgferry's own
 * helpers (the harness is the oracle: it does not lean on the code under test).
 */

/** The SQLSTATE of a server error or the errno code of a socket error, if `error` has one. */
export function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

export function errorMessage(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'message' in error && typeof error.message === 'string') return error.message;
  return String(error);
}

/** "CODE: message", for assertion messages. */
export function describeError(error: unknown): string {
  const code = errorCode(error);
  return code === undefined ? errorMessage(error) : `${code}: ${errorMessage(error)}`;
}
