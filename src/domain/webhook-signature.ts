/**
 * Signing a webhook: pure functions (no clock, no I/O), held to test vectors computed by openssl
 * (test/unit/webhook-signature.test.ts). `Payouts-Signature: t=<unix seconds of this attempt>,v1=<hex>[,v1=<hex>]`,
 * where each hex is HMAC-SHA256 keyed by one active secret — the whole string as shown, `whsec_` included — over
 * `<t>.<raw body>`. One `v1=` per active secret, newest first, so a receiver that knows either one verifies.
 */
import { createHmac } from 'node:crypto';

/** The header a signature travels in. */
export const SIGNATURE_HEADER = 'Payouts-Signature';

/** The hex HMAC-SHA256 of `<timestamp>.<rawBody>` under `secret`. */
export function webhookSignature(secret: string, timestamp: number, rawBody: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestamp}.`, 'utf8').update(rawBody).digest('hex');
}

/** The `Payouts-Signature` value of one attempt: its time, and one `v1=` per secret, in the order given. */
export function signatureHeader(
  secrets: readonly string[],
  timestamp: number,
  rawBody: string | Buffer,
): string {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0)
    throw new Error('the timestamp must be unix seconds');
  if (secrets.length === 0) throw new Error('at least one secret signs');
  return [
    `t=${timestamp}`,
    ...secrets.map((secret) => `v1=${webhookSignature(secret, timestamp, rawBody)}`),
  ].join(',');
}
