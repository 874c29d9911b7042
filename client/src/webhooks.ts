/**
 * Verifying a webhook of the Payouts API, for receivers. `Payouts-Signature` is `t=<unix seconds>,v1=<hex>[,v1=…]`,
 * each hex the HMAC-SHA256 of `<t>.<raw body>` keyed by one of the endpoint's secrets (the whole `whsec_…`
 * string). The signature is checked over the body's exact bytes — pass the raw body, never a re-serialized object —
 * and the time must be within `toleranceSeconds` of now, so a captured request cannot be replayed later. Uses the
 * Web Crypto API (Node 20+, browsers, workers): no dependency.
 */
import type { components } from './schema.js';

export type WebhookEventType =
  | 'payout.created'
  | 'payout.processing'
  | 'payout.completed'
  | 'payout.failed'
  | 'payout.cancelled'
  | 'payout.needs_attention';

/** A webhook event as its body carries it. Order events of one payout by `payout_version`; de-duplicate by `id`. */
export interface WebhookEvent {
  id: string;
  type: WebhookEventType;
  created_at: string;
  data: { object: components['schemas']['Payout'] };
  payout_version: number;
}

export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookVerificationError';
  }
}

const encoder = new TextEncoder();

async function hmacHex(secret: string, message: Uint8Array<ArrayBuffer>): Promise<string> {
  const key = await crypto.subtle.importKey(
    'raw',
    encoder.encode(secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, message));
  return Array.from(mac, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/** Compares two strings in time that depends on their length only. */
function equalInConstantTime(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i += 1) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}

/**
 * The event, once its signature verifies under one of `secrets` within `toleranceSeconds`; otherwise throws
 * `WebhookVerificationError`. During a secret rotation, pass both secrets.
 */
export async function verifyWebhook(
  rawBody: string | Uint8Array,
  signatureHeader: string | null | undefined,
  secrets: string | readonly string[],
  toleranceSeconds = 300,
  nowSeconds: number = Math.floor(Date.now() / 1000),
): Promise<WebhookEvent> {
  if (!signatureHeader) throw new WebhookVerificationError('no Payouts-Signature header');
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const part of signatureHeader.split(',')) {
    const [name, value = ''] = part.trim().split('=', 2) as [string, string?];
    if (name === 't' && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    else if (name === 'v1' && /^[0-9a-f]{64}$/.test(value)) signatures.push(value);
  }
  if (timestamp === undefined) throw new WebhookVerificationError('the signature has no timestamp');
  if (signatures.length === 0) throw new WebhookVerificationError('the signature has no v1 value');
  if (Math.abs(nowSeconds - timestamp) > toleranceSeconds) {
    throw new WebhookVerificationError('the signature is outside the tolerance');
  }
  const body = typeof rawBody === 'string' ? encoder.encode(rawBody) : rawBody;
  const prefix = encoder.encode(`${timestamp}.`);
  const message = new Uint8Array(prefix.length + body.length);
  message.set(prefix);
  message.set(body, prefix.length);
  for (const secret of typeof secrets === 'string' ? [secrets] : secrets) {
    const expected = await hmacHex(secret, message);
    if (signatures.some((signature) => equalInConstantTime(signature, expected))) {
      return JSON.parse(new TextDecoder().decode(body)) as WebhookEvent;
    }
  }
  throw new WebhookVerificationError('no signature matches the secrets');
}
