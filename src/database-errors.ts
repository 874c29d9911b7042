/**
 * What a database error means, read from what PostgreSQL, node-postgres and knex say: a value the database refused
 * (the request is bad) or the database not being there (try again later). One classification, read by the store
 * (the domain's errors), the HTTP layer (a 400 or 503 for one that slips through) and the worker's retry policy
 * (wait without spending the payout's retries).
 */

/** SQLSTATE class 22: the database refused a value (bad encoding, out of range, invalid text representation). */
export function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('22');
}

/*
 * "The database is not there right now" — as opposed to "this request is bad". One list, read by the HTTP layer
 * (503 instead of 500) and by the worker's retry policy (wait without spending the payout's retries).
 */

/** Class 08 connection exceptions; 57P01-03 admin/crash shutdown, cannot connect now; 53300/53400 connection limits. */
export const DATABASE_UNAVAILABLE_SQLSTATES: readonly string[] = [
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  '08007',
  '08P01',
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '53400',
];

/** Node.js socket errors (`error.code`) of a connection that could not be made or was lost. */
export const CONNECTION_ERROR_CODES: readonly string[] = [
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTCONN',
  'ENOTFOUND',
  'EAI_AGAIN',
];

/** node-postgres reports a dropped or unusable connection only in words; knex's pool says so by name. */
export const CONNECTION_LOST_MESSAGES: readonly RegExp[] = [
  /Connection terminated/i,
  /Client has encountered a connection error/i,
  /timeout exceeded when trying to connect/i,
  /Client was closed and is not queryable/i,
];
export const CONNECTION_LOST_NAMES: readonly string[] = ['KnexTimeoutError'];

export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (
    typeof code === 'string' &&
    (DATABASE_UNAVAILABLE_SQLSTATES.includes(code) || CONNECTION_ERROR_CODES.includes(code))
  ) {
    return true;
  }
  return (
    CONNECTION_LOST_NAMES.includes(error.name) ||
    CONNECTION_LOST_MESSAGES.some((pattern) => pattern.test(error.message))
  );
}
