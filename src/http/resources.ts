/**
 * The wire format of the API's resources: a payout and a history entry as `openapi.yaml` describes them (snake
 * case, decimal strings, masked accounts, RFC 3339 times), and the opaque cursor of a list page.
 */
import type { PayoutHistoryEntry } from '../domain/payout.js';
import type { PayoutStatus } from '../machines/payout-lifecycle.js';
import type { WebhookDelivery, WebhookEndpoint, WebhookEventType } from '../domain/webhooks.js';

export type { PayoutResource } from '../domain/payout-resource.js';
export { toPayoutResource } from '../domain/payout-resource.js';

export interface PayoutEventResource {
  id: string;
  from: PayoutStatus | null;
  to: PayoutStatus;
  event: string;
  actor: string;
  actor_role: string;
  reason: string | null;
  request_id: string | null;
  at: string;
}

export function toPayoutEventResource(entry: PayoutHistoryEntry): PayoutEventResource {
  return {
    id: entry.id,
    from: entry.from,
    to: entry.to,
    event: entry.event,
    actor: entry.actor,
    actor_role: entry.actorRole,
    reason: entry.reason,
    request_id: entry.requestId,
    at: entry.at.toISOString(),
  };
}

/** The API representation of a webhook endpoint (`WebhookEndpoint`); its secret only when just made. */
export interface WebhookEndpointResource {
  id: string;
  url: string;
  events: WebhookEventType[];
  description: string | null;
  status: 'enabled' | 'disabled';
  disabled_reason: string | null;
  created_at: string;
  updated_at: string;
  secret?: string;
}

export function toWebhookEndpointResource(
  endpoint: WebhookEndpoint,
  secret?: string,
): WebhookEndpointResource {
  return {
    id: endpoint.id,
    url: endpoint.url,
    events: endpoint.events,
    description: endpoint.description,
    status: endpoint.status,
    disabled_reason: endpoint.disabledReason,
    created_at: endpoint.createdAt.toISOString(),
    updated_at: endpoint.updatedAt.toISOString(),
    ...(secret === undefined ? {} : { secret }),
  };
}

/** The API representation of a webhook delivery (`WebhookDelivery`): one event's way to one endpoint. */
export interface WebhookDeliveryResource {
  id: string;
  event_id: string;
  type: WebhookEventType;
  payout_id: string;
  payout_version: number;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  next_attempt_at: string | null;
  delivered_at: string | null;
  created_at: string;
}

export function toWebhookDeliveryResource(delivery: WebhookDelivery): WebhookDeliveryResource {
  return {
    id: delivery.id,
    event_id: delivery.eventId,
    type: delivery.type,
    payout_id: delivery.payoutId,
    payout_version: delivery.payoutVersion,
    status: delivery.status,
    attempts: delivery.attempts,
    last_status_code: delivery.lastStatusCode,
    last_error: delivery.lastError,
    next_attempt_at: delivery.nextAttemptAt?.toISOString() ?? null,
    delivered_at: delivery.deliveredAt?.toISOString() ?? null,
    created_at: delivery.createdAt.toISOString(),
  };
}

/**
 * What a cursor pages through, and the tag that says so inside it: a cursor of one list is refused by another
 * (a 400, like any cursor this API did not issue).
 */
const CURSOR_TAGS = { payouts: 'v1', history: 'h1', endpoints: 'e1', deliveries: 'd1' } as const;

export type CursorKind = keyof typeof CURSOR_TAGS;

/** The opaque cursor of a list page: the position of the page's last row (a payout's, or a history row's). */
export function encodeCursor(position: string, kind: CursorKind = 'payouts'): string {
  return Buffer.from(`${CURSOR_TAGS[kind]}:${position}`, 'utf8').toString('base64url');
}

/** A cursor this API issued for that kind of list, as the position it names; null for anything else. */
export function decodeCursor(cursor: string, kind: CursorKind = 'payouts'): string | null {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(cursor)) return null;
  const match = /^([a-z0-9]+):([1-9]\d{0,18})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match || match[1] !== CURSOR_TAGS[kind] || BigInt(match[2]!) > 9223372036854775807n) return null;
  return match[2]!;
}
