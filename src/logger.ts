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
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination as never,
  );
}
