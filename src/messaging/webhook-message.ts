/**
 * The message contract between the outbox and the `webhooks` role: a delivery to carry out, by id. The event's
 * body is not in the message: it is rendered from the delivery's row, so a message replayed from the dead-letter
 * queue or redelivered after a crash sends the same bytes as the first attempt.
 */
import type { Envelope } from 'rabbitmq-client';
import { CANONICAL_UUID_PATTERN } from '../domain/text.js';
import { WEBHOOK_DELIVERY_TOPIC } from '../persistence/payout-repository.js';
import type { Destination } from './topology.js';

export { WEBHOOK_DELIVERY_TOPIC };

export interface WebhookDeliveryMessage {
  delivery_id: string;
}

/** Headers of a webhook message: the retries it has spent (its own, not the broker's delivery count). */
export const WEBHOOK_HEADERS = { attempt: 'x-attempt', deathReason: 'x-death-reason' } as const;

export function webhookEnvelope(
  destination: Destination,
  message: WebhookDeliveryMessage,
  attempt = 0,
  extraHeaders: Record<string, unknown> = {},
): Envelope {
  return {
    ...destination,
    durable: true,
    contentType: 'application/json',
    messageId: message.delivery_id,
    type: WEBHOOK_DELIVERY_TOPIC,
    headers: { ...extraHeaders, [WEBHOOK_HEADERS.attempt]: attempt },
  };
}

const UUID = new RegExp(CANONICAL_UUID_PATTERN);

/** The message a delivery's bytes carry, or null when they are not one (poison: dead-lettered). */
export function decodeWebhookMessage(body: unknown): WebhookDeliveryMessage | null {
  let value = body;
  if (Buffer.isBuffer(value)) {
    if (value.length > 1024) return null;
    try {
      value = JSON.parse(value.toString('utf8')) as unknown;
    } catch {
      return null;
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const id = (value as Record<string, unknown>).delivery_id;
  if (Object.keys(value).length !== 1 || typeof id !== 'string' || !UUID.test(id)) return null;
  return { delivery_id: id };
}
