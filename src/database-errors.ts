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

/**
 * Class 08 connection exceptions; 57P01-03 admin/crash shutdown, cannot connect now; 53300/53400 connection limits;
 * 3D000 the database does not exist (not created yet, dropped, a wrong name): nothing this process can fix, and
 * nothing a request did; 28000/28P01 the login refused (a role or password not there yet, rotated, revoked);
 * 57014 a statement cancelled (`statement_timeout`); 25P03/57P05 a session ended for idling in a transaction or
 * idling (`idle_in_transaction_session_timeout`, `idle_session_timeout`).
 */
export const DATABASE_UNAVAILABLE_SQLSTATES: readonly string[] = [
  '3D000',
  '28000',
  '28P01',
  '57014',
  '25P03',
  '57P05',
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
  // node-postgres's connect timeout (`connectionTimeoutMillis`) and its `query_timeout` (a silent socket); knex
  // puts the statement before a statement's error message ("<sql> - Query read timeout").
  /(^|- )timeout expired$/i,
  /(^|- )Query read timeout$/i,
];
export const CONNECTION_LOST_NAMES: readonly string[] = ['KnexTimeoutError'];

/**
 * 55P03 a lock not obtained within `lock_timeout`: the database is there but busy, so the API answers 503 as for an
 * outage. Not in the list above: the worker's retry policy counts it as a conflict, which spends a retry.
 */
export const DATABASE_BUSY_SQLSTATES: readonly string[] = ['55P03'];

export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (
    typeof code === 'string' &&
    (DATABASE_UNAVAILABLE_SQLSTATES.includes(code) ||
      DATABASE_BUSY_SQLSTATES.includes(code) ||
      CONNECTION_ERROR_CODES.includes(code))
  ) {
    return true;
  }
  return (
    CONNECTION_LOST_NAMES.includes(error.name) ||
    CONNECTION_LOST_MESSAGES.some((pattern) => pattern.test(error.message))
  );
}

/**
 * Why the database is unavailable, in a few words an operator can act on (the readiness check's detail and log
 * line): never the server's message, which may name the database or the role.
 */
export function unavailabilityCause(error: unknown): string {
  // The store's StoreUnavailable carries the database's error as its cause.
  for (let depth = 0; depth < 5 && error instanceof Error && !isDatabaseUnavailable(error); depth += 1) {
    const cause = (error as Error & { cause?: unknown }).cause;
    if (cause === undefined) break;
    error = cause;
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (code === '3D000') return 'missing database';
  if (code === '28000' || code === '28P01') return 'login refused';
  if (code === '57P03') return 'database starting up or shutting down';
  if (code === '53300' || code === '53400') return 'too many connections';
  if (code === '57014') return 'statement timed out';
  if (code === '55P03') return 'lock wait timed out';
  if (code === '25P03' || code === '57P05') return 'session ended for idling';
  if (error instanceof Error) {
    if (error.name === 'KnexTimeoutError') return 'no connection available in time';
    if (/(^|- )Query read timeout$/i.test(error.message)) return 'no answer in time';
  }
  if (isDatabaseUnavailable(error)) return 'unreachable';
  return 'failing';
}
