/**
 * The webhook endpoints of a client: register, list, read, change, delete, rotate the signing secret. Clients and
 * operators manage their own client's endpoints alike (an endpoint is integration plumbing, not a payout); every
 * call is scoped by the principal's client, so another client's endpoint is 404.
 */
import { randomBytes } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import type { FieldError } from './errors.js';
import {
  Forbidden,
  ValidationFailed,
  WebhookDeliveryNotFound,
  WebhookEndpointDisabled,
  WebhookEndpointNotFound,
} from './errors.js';
import type { OutboxWaker } from './scheduling.js';
import { normaliseNote } from './payout-request.js';
import type { Principal } from './principal.js';
import { isCanonicalUuid, isStorable } from './text.js';
import type { EgressPolicy } from './webhook-egress.js';
import { endpointUrlProblem } from './webhook-egress.js';
import type {
  WebhookDelivery,
  WebhookEndpoint,
  WebhookEndpointChanges,
  WebhookEndpointStatus,
  WebhookEventType,
  WebhookStore,
} from './webhooks.js';
import { WEBHOOK_EVENT_TYPES } from './webhooks.js';

/** A signing secret: `whsec_` and 32 random bytes in base64url. The HMAC key is this whole string. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

export interface CreateEndpointInput {
  url: string;
  events?: WebhookEventType[];
  description?: string | null;
}

export interface UpdateEndpointInput {
  url?: string;
  events?: WebhookEventType[];
  description?: string | null;
  status?: WebhookEndpointStatus;
}

/** An endpoint with its secret: only the answers of a create and a rotation carry it. */
export interface EndpointWithSecret {
  endpoint: WebhookEndpoint;
  secret: string;
}

export interface EndpointPage {
  items: WebhookEndpoint[];
  next: string | null;
}

export interface DeliveryPage {
  items: WebhookDelivery[];
  next: string | null;
}

export interface WebhookServiceDeps {
  store: WebhookStore;
  /** Tells relays a redelivery waits in the outbox. */
  waker?: OutboxWaker;
  egress: EgressPolicy;
  /** How long a rotated-out secret keeps signing (`WEBHOOK_SECRET_OVERLAP`), in milliseconds. */
  secretOverlapMs: number;
  now?: () => Date;
}

export class WebhookService {
  constructor(private readonly deps: WebhookServiceDeps) {}

  async createEndpoint(principal: Principal, input: CreateEndpointInput): Promise<EndpointWithSecret> {
    assertManager(principal);
    const fields: FieldError[] = [];
    this.checkUrl(input.url, fields);
    const events = checkEvents(input.events ?? [...WEBHOOK_EVENT_TYPES], fields);
    const description =
      input.description === undefined ? null : normaliseNote(input.description, 'description', fields);
    if (fields.length > 0) throw new ValidationFailed(fields);
    const now = this.now();
    const endpoint: WebhookEndpoint = {
      id: uuidv7(),
      clientId: principal.clientId,
      url: input.url,
      events,
      description,
      status: 'enabled',
      disabledReason: null,
      createdAt: now,
      updatedAt: now,
    };
    const secret = newWebhookSecret();
    await this.deps.store.createEndpoint(endpoint, secret);
    return { endpoint, secret };
  }

  async listEndpoints(principal: Principal, query: { limit: number; after?: string }): Promise<EndpointPage> {
    assertManager(principal);
    if (!Number.isInteger(query.limit) || query.limit < 1 || query.limit > 100) {
      throw new ValidationFailed([{ field: 'limit', message: 'must be an integer from 1 to 100' }]);
    }
    const page = await this.deps.store.listEndpoints(principal.clientId, query);
    return { items: page.endpoints, next: page.hasMore ? page.last : null };
  }

  async getEndpoint(principal: Principal, id: string): Promise<WebhookEndpoint> {
    assertManager(principal);
    assertEndpointId(id);
    const endpoint = await this.deps.store.findEndpoint(principal.clientId, id);
    if (!endpoint) throw new WebhookEndpointNotFound(id);
    return endpoint;
  }

  async updateEndpoint(
    principal: Principal,
    id: string,
    input: UpdateEndpointInput,
  ): Promise<WebhookEndpoint> {
    assertManager(principal);
    assertEndpointId(id);
    const fields: FieldError[] = [];
    const changes: WebhookEndpointChanges = {};
    if (input.url !== undefined) {
      this.checkUrl(input.url, fields);
      changes.url = input.url;
    }
    if (input.events !== undefined) changes.events = checkEvents(input.events, fields);
    if (input.description !== undefined) {
      changes.description = normaliseNote(input.description, 'description', fields);
    }
    if (input.status !== undefined) changes.status = input.status;
    if (fields.length === 0 && Object.keys(changes).length === 0) {
      fields.push({ field: '', message: 'must change url, events, description or status' });
    }
    if (fields.length > 0) throw new ValidationFailed(fields);
    const endpoint = await this.deps.store.updateEndpoint(principal.clientId, id, changes);
    if (!endpoint) throw new WebhookEndpointNotFound(id);
    return endpoint;
  }

  async deleteEndpoint(principal: Principal, id: string): Promise<void> {
    assertManager(principal);
    assertEndpointId(id);
    if (!(await this.deps.store.deleteEndpoint(principal.clientId, id)))
      throw new WebhookEndpointNotFound(id);
  }

  /** A new secret, shown once; the current one keeps signing for `secretOverlapMs`. */
  async rotateSecret(principal: Principal, id: string): Promise<EndpointWithSecret> {
    assertManager(principal);
    assertEndpointId(id);
    const secret = newWebhookSecret();
    const until = new Date(this.now().getTime() + this.deps.secretOverlapMs);
    const endpoint = await this.deps.store.rotateSecret(principal.clientId, id, secret, until);
    if (!endpoint) throw new WebhookEndpointNotFound(id);
    return { endpoint, secret };
  }

  /** A page of one of the client's endpoints' deliveries, newest first, optionally of one payout. */
  async listDeliveries(
    principal: Principal,
    endpointId: string,
    query: { limit: number; after?: string; payoutId?: string },
  ): Promise<DeliveryPage> {
    const endpoint = await this.getEndpoint(principal, endpointId);
    const fields: FieldError[] = [];
    if (!Number.isInteger(query.limit) || query.limit < 1 || query.limit > 100) {
      fields.push({ field: 'limit', message: 'must be an integer from 1 to 100' });
    }
    if (query.payoutId !== undefined && !isCanonicalUuid(query.payoutId)) {
      fields.push({ field: 'payout_id', message: 'must be a UUID in canonical lower-case form' });
    }
    if (fields.length > 0) throw new ValidationFailed(fields);
    const page = await this.deps.store.listDeliveries(principal.clientId, endpoint.id, query);
    return { items: page.deliveries, next: page.hasMore ? page.last : null };
  }

  /** Sends a delivery again: pending, its schedule started again, the same event id and body. */
  async redeliver(principal: Principal, deliveryId: string): Promise<WebhookDelivery> {
    assertManager(principal);
    if (!isCanonicalUuid(deliveryId)) {
      throw new WebhookDeliveryNotFound(isStorable(deliveryId) ? deliveryId : '(invalid id)');
    }
    const result = await this.deps.store.redeliver(principal.clientId, deliveryId);
    if (result === null) throw new WebhookDeliveryNotFound(deliveryId);
    if ('disabledEndpoint' in result) throw new WebhookEndpointDisabled(result.disabledEndpoint);
    this.deps.waker?.wake();
    return result;
  }

  private checkUrl(url: string, fields: FieldError[]): void {
    const problem = isStorable(url) ? endpointUrlProblem(url, this.deps.egress) : 'must be printable text';
    if (problem) fields.push({ field: 'url', message: problem });
  }

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }
}

/** Clients and operators manage their own client's endpoints; the pipeline's roles never do. */
function assertManager(principal: Principal): void {
  if (principal.role !== 'client' && principal.role !== 'operator') {
    throw new Forbidden(`A ${principal.role} may not manage webhook endpoints.`);
  }
}

function assertEndpointId(id: string): void {
  if (!isCanonicalUuid(id)) throw new WebhookEndpointNotFound(isStorable(id) ? id : '(invalid id)');
}

function checkEvents(events: readonly string[], fields: FieldError[]): WebhookEventType[] {
  const known = new Set<string>(WEBHOOK_EVENT_TYPES);
  if (events.length === 0) fields.push({ field: 'events', message: 'must name at least one event type' });
  else if (events.some((type) => !known.has(type))) {
    fields.push({ field: 'events', message: `must be among ${WEBHOOK_EVENT_TYPES.join(', ')}` });
  } else if (new Set(events).size !== events.length) {
    fields.push({ field: 'events', message: 'must not repeat an event type' });
  }
  return [...new Set(events)] as WebhookEventType[];
}
