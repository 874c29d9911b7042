/**
 * Structured JSON logs. Recipient account data and credentials are redacted wherever they appear in a logged
 * object, so a careless `log.info({ payout })` cannot leak them.
 */
import { pino } from 'pino';
import type { Logger } from 'pino';

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

export function createLogger(
  options: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {},
): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      name: options.name,
      base: { service: 'payouts', role: options.name },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }), log: maskPath },
    },
    options.destination as never,
  );
}
