/**
 * Structured JSON logs. Recipient account data and credentials are redacted wherever they appear in a logged
 * object, so a careless `log.info({ payout })` cannot leak them; a logged error keeps what says what went wrong
 * and loses what can quote the data it was about (`serializeError`).
 */
import { createRequire } from 'node:module';
import { pino } from 'pino';
import type { Logger } from 'pino';
import type { LogFormat } from './config.js';

export type { Logger };

export const REDACT_PATHS = [
  'iban',
  '*.iban',
  '*.*.iban',
  '*.*.*.iban',
  'recipient.iban',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  '*.headers.authorization',
  'authorization',
  '*.authorization',
  'apiKey',
  '*.apiKey',
  'key',
  '*.key_hash',
];

/** An IBAN-shaped word: country, check digits, 11 to 30 more letters and digits. */
const IBAN_SHAPED = /\b[A-Za-z]{2}[0-9]{2}[A-Za-z0-9]{11,30}\b/g;

/** Every IBAN-shaped word of a text masked to its last four characters, as responses show account numbers. */
export function maskAccountNumbers(text: string): string {
  return text.replace(IBAN_SHAPED, (iban) => `${'*'.repeat(iban.length - 4)}${iban.slice(-4)}`);
}

/**
 * Redaction works on keys, but a request path is the client's own text: a client that puts an account number in
 * a URL by mistake (`GET /api/payouts/GB29NWBK…`) would otherwise find it in the access log.
 */
function maskPath(object: Record<string, unknown>): Record<string, unknown> {
  return typeof object.path === 'string' ? { ...object, path: maskAccountNumbers(object.path) } : object;
}

/**
 * A logger for lines whose every field the caller writes out and none can hold account data or a credential (the
 * access line: method, route, path, status, problem code, duration): the same output without the redaction pass,
 * which clones and re-serializes each field of a line (pino's `@pinojs/redact`) and cost more than the rest of
 * the line. A path is still masked (`maskPath`, the formatter every line goes through). Never log an object
 * received from elsewhere through it.
 */
export function accessLogger(log: Logger): Logger {
  return log.child({}, { redact: [] });
}

/**
 * What an error can carry that quotes the data of a statement, dropped from every logged error: PostgreSQL's
 * `detail` ("Failing row contains (…)", "Key (…)=(…) already exists", which can hold a recipient), `where` (the
 * context, with values), `hint` and `internalQuery`; and the statement and its values a library may attach
 * (`query`, `sql`, `bindings`, `parameters`, `parameter`). The SQLSTATE `code`, the constraint, the table and the
 * message stay: they say what went wrong without saying about whom.
 */
export const ERROR_DATA_KEYS: readonly string[] = [
  'detail',
  'where',
  'hint',
  'internalQuery',
  'query',
  'sql',
  'bindings',
  'parameters',
  'parameter',
];

/**
 * pino's error serializer, then `withoutData` on its result: the logged error object is a copy, so the error
 * itself keeps everything for whoever handles it.
 */
export function serializeError(error: unknown): unknown {
  return withoutData(pino.stdSerializers.err(error as Error));
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object';
const isErrorLike = (value: unknown): boolean => isObject(value) && typeof value.message === 'string';

/**
 * A serialized error without `ERROR_DATA_KEYS`, its message and stack with account numbers masked; the same for
 * every error it carries (a property holding an error, such as objection's `nativeError`; `aggregateErrors`; a
 * `cause` the serializer kept because it is not an error). Other values are kept as they are.
 */
function withoutData(value: unknown, seen = new Set<object>()): unknown {
  if (!isObject(value) || seen.has(value)) return value;
  seen.add(value);
  const clean: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (ERROR_DATA_KEYS.includes(key)) continue;
    if ((key === 'message' || key === 'stack') && typeof item === 'string')
      clean[key] = maskAccountNumbers(item);
    else if (key === 'cause' || isErrorLike(item)) clean[key] = withoutData(item, seen);
    else if (Array.isArray(item) && item.some(isErrorLike))
      clean[key] = (item as unknown[]).map((entry) =>
        isErrorLike(entry) ? withoutData(entry, seen) : entry,
      );
    else clean[key] = item;
  }
  return clean;
}

/**
 * Where a process's log lines go: standard output as JSON (production, a pipe, a file), or readable lines through
 * `pino-pretty` when a person reads them — `LOG_FORMAT=pretty`, or `auto` with standard output a terminal.
 * pino-pretty is a development dependency, absent from the image: without it the lines stay JSON (`pretty`
 * says so once on standard error).
 */
export function logDestination(
  format: LogFormat,
  stdout: NodeJS.WriteStream = process.stdout,
): NodeJS.WritableStream | undefined {
  if (format === 'json' || (format === 'auto' && !stdout.isTTY)) return undefined;
  let pretty: (options: Record<string, unknown>) => NodeJS.WritableStream;
  try {
    pretty = createRequire(import.meta.url)('pino-pretty') as typeof pretty;
  } catch {
    if (format === 'pretty')
      process.stderr.write('LOG_FORMAT=pretty: pino-pretty is not installed; logging JSON\n');
    return undefined;
  }
  return pretty({
    colorize: stdout.isTTY === true,
    translateTime: 'SYS:HH:MM:ss.l',
    // The role is the logger's name, printed first; the service and process are the same on every line.
    ignore: 'pid,hostname,service,role',
    destination: stdout,
    sync: true,
  });
}

export function createLogger(
  options: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {},
): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      name: options.name,
      base: { service: 'payouts', role: options.name },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { err: serializeError },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }), log: maskPath },
    },
    options.destination as never,
  );
}
