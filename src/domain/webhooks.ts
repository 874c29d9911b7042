/**
 * Webhooks in the domain's words: the event types, an endpoint, a delivery, and the store's port. Each payout
 * change that the machine marks as notifiable (`PayoutNotification` in src/machines/payout-lifecycle.ts) becomes
 * one delivery row per subscribed, enabled endpoint of the payout's client, written by the same statement as the
 * change; the `webhooks` role delivers them.
 */
import type { PayoutStatus } from '../machines/payout-lifecycle.js';

/** Every event type, in the order of a payout's life. */
export const WEBHOOK_EVENT_TYPES = [
  'payout.created',
  'payout.processing',
  'payout.completed',
  'payout.failed',
  'payout.cancelled',
  'payout.needs_attention',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** The event of a payout entering a status. */
export function statusEvent(status: PayoutStatus): WebhookEventType {
  return `payout.${status}`;
}

export type WebhookEndpointStatus = 'enabled' | 'disabled';

export interface WebhookEndpoint {
  id: string;
  clientId: string;
  url: string;
  events: WebhookEventType[];
  description: string | null;
  status: WebhookEndpointStatus;
  /** Why the service disabled it (`consecutive_failures`); null when enabled or disabled by its client. */
  disabledReason: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** What a change of an endpoint sets; absent means unchanged. */
export interface WebhookEndpointChanges {
  url?: string;
  events?: WebhookEventType[];
  description?: string | null;
  status?: WebhookEndpointStatus;
}

export interface WebhookEndpointPage {
  endpoints: WebhookEndpoint[];
  last: string | null;
  hasMore: boolean;
}

export type WebhookDeliveryStatus = 'pending' | 'delivered' | 'failed';

/** One event on its way to one endpoint. */
export interface WebhookDelivery {
  id: string;
  eventId: string;
  endpointId: string;
  type: WebhookEventType;
  payoutId: string;
  payoutVersion: number;
  status: WebhookDeliveryStatus;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  nextAttemptAt: Date | null;
  deliveredAt: Date | null;
  createdAt: Date;
}

export interface WebhookDeliveryPage {
  deliveries: WebhookDelivery[];
  last: string | null;
  hasMore: boolean;
}

export interface WebhookDeliveryFilter {
  limit: number;
  after?: string;
  payoutId?: string;
}

/** The endpoints' store. Every call is scoped by client: another client's endpoint is never found. */
export interface WebhookStore {
  createEndpoint(endpoint: WebhookEndpoint, secret: string): Promise<void>;
  listEndpoints(clientId: string, page: { limit: number; after?: string }): Promise<WebhookEndpointPage>;
  findEndpoint(clientId: string, id: string): Promise<WebhookEndpoint | null>;
  updateEndpoint(
    clientId: string,
    id: string,
    changes: WebhookEndpointChanges,
  ): Promise<WebhookEndpoint | null>;
  /** Disables and hides it; its deliveries stay. False when there is no such endpoint. */
  deleteEndpoint(clientId: string, id: string): Promise<boolean>;
  /** A page of an endpoint's deliveries, newest first. */
  listDeliveries(
    clientId: string,
    endpointId: string,
    filter: WebhookDeliveryFilter,
  ): Promise<WebhookDeliveryPage>;
  /**
   * Puts a delivery of the client back to pending with its schedule started again, and queues it (its outbox row
   * in the same statement). Null when there is no such delivery (or its endpoint is deleted); the endpoint's id
   * when it is disabled, and then nothing changes.
   */
  redeliver(
    clientId: string,
    deliveryId: string,
  ): Promise<WebhookDelivery | { disabledEndpoint: string } | null>;
  /** Stores a new secret; the current one keeps signing until `previousExpiresAt`. */
  rotateSecret(
    clientId: string,
    id: string,
    secret: string,
    previousExpiresAt: Date,
  ): Promise<WebhookEndpoint | null>;
}
