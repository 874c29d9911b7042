/**
 * A small typed client of the Payouts API. The request and response types come from `schema.d.ts`, which
 * `make client` generates from openapi.yaml with openapi-typescript, so a change to the contract that breaks a
 * caller breaks its type check. openapi-fetch does the requests; this module adds the bearer key, the
 * `Idempotency-Key`/`If-Match`/`X-Request-Id` headers, and turns every error response into one exception
 * carrying the problem document.
 *
 *     const payouts = createPayoutsClient({ baseUrl: 'http://127.0.0.1:8000', apiKey: process.env.KEY! });
 *     const payout = await payouts.createPayout(body, { idempotencyKey: randomUUID() });
 */
import createClient from 'openapi-fetch';
import type { components, paths } from './schema.js';

type Schemas = components['schemas'];

// openapi.yaml's discriminators carry a `mapping` (`iban` → its schema), so the generated types say
// `recipient.type: 'iban'`, as on the wire: they are used as they are.
export type RecipientInput = Schemas['RecipientInput'];
export type Recipient = Schemas['Recipient'];
export type CreatePayoutRequest = Schemas['CreatePayoutRequest'];
export type Payout = Schemas['Payout'];
export type PayoutPage = Schemas['PayoutPage'];
export type PayoutEvent = Schemas['PayoutEvent'];
export type PayoutEventPage = Schemas['PayoutEventPage'];
export type PayoutStatus = Schemas['PayoutStatus'];
export type UpdatePayoutRequest = Schemas['UpdatePayoutRequest'];
export type Problem = Schemas['Problem'];
export type ListPayoutsQuery = NonNullable<paths['/api/payouts']['get']['parameters']['query']>;
export type ListPayoutEventsQuery = NonNullable<
  paths['/api/payouts/{id}/events']['get']['parameters']['query']
>;
export type WebhookEndpoint = Schemas['WebhookEndpoint'];
export type WebhookEndpointWithSecret = Schemas['WebhookEndpointWithSecret'];
export type WebhookEndpointPage = Schemas['WebhookEndpointPage'];
export type CreateWebhookEndpointRequest = Schemas['CreateWebhookEndpointRequest'];
export type UpdateWebhookEndpointRequest = Schemas['UpdateWebhookEndpointRequest'];
export type WebhookDelivery = Schemas['WebhookDelivery'];
export type WebhookDeliveryPage = Schemas['WebhookDeliveryPage'];
export type ListWebhookDeliveriesQuery = NonNullable<
  paths['/api/webhook-endpoints/{id}/deliveries']['get']['parameters']['query']
>;
export type { components, paths };

export interface PayoutsClientOptions {
  /** Where the API is, e.g. `http://127.0.0.1:8000` (paths start with `/api/...`). */
  baseUrl: string;
  /** The bearer key (`pk_live_…`); sent as `Authorization: Bearer <key>` and never put in an error. */
  apiKey: string;
  /** A fetch to use instead of the global one (tests, proxies, retries). */
  fetch?: (request: Request) => Promise<Response>;
}

/** Options every call takes. */
export interface CallOptions {
  /** Sent as `X-Request-Id`; the API echoes it and records it in the payout's history. */
  requestId?: string;
  signal?: AbortSignal;
}

export interface CreateOptions extends CallOptions {
  /**
   * Send one with every create (a UUID per intended payout): after a network error, a retry with the same key
   * and body returns the first payout instead of creating a second one.
   */
  idempotencyKey?: string;
}

export interface ConditionalOptions extends CallOptions {
  /** The version you last saw (`payout.version`), an `ETag` as the API sent it, or `*`: another version is 412. */
  ifMatch?: number | string;
}

/**
 * An error response of the API, with its problem document. `problem.code` is the stable identifier to switch
 * on (`payout_not_found`, `validation_failed`, `version_mismatch`, …); `problem.errors` names every bad field.
 */
export class PayoutsApiError extends Error {
  readonly status: number;
  readonly problem: Problem;
  /** The request id of the failed call (quote it to support). */
  readonly requestId: string | undefined;

  constructor(status: number, problem: Problem, requestId: string | undefined) {
    super(`${status} ${problem.code}: ${problem.detail}`);
    this.name = 'PayoutsApiError';
    this.status = status;
    this.problem = problem;
    this.requestId = requestId;
  }

  get code(): string {
    return this.problem.code;
  }
}

export interface PayoutsClient {
  createPayout(body: CreatePayoutRequest, options?: CreateOptions): Promise<Payout>;
  getPayout(id: string, options?: CallOptions): Promise<Payout>;
  listPayouts(query?: ListPayoutsQuery, options?: CallOptions): Promise<PayoutPage>;
  /**
   * `PATCH`. An operator's `completed` or `failed` of a payout in `processing` is a request (answered 202): the
   * payout comes back still `processing`, and the worker settles it with the provider's answer.
   */
  updatePayout(id: string, patch: UpdatePayoutRequest, options?: ConditionalOptions): Promise<Payout>;
  /** An operator's retry of a payout in stage `needs_attention` (202: the worker takes it up again). */
  retryPayout(id: string, reason: string, options?: ConditionalOptions): Promise<Payout>;
  /** `DELETE`: cancels a payout still in `created` and hides it; anything else is a 409 error. */
  cancelPayout(id: string, options?: ConditionalOptions): Promise<void>;
  /**
   * One page of a payout's history, oldest first (`limit` 1–100, 20 by default): pass `next_cursor` as `cursor`
   * for the next page; it is null on the last one.
   */
  listPayoutEvents(
    id: string,
    query?: ListPayoutEventsQuery,
    options?: CallOptions,
  ): Promise<PayoutEventPage>;
  /** Registers a webhook endpoint; the answer's `secret` is shown only here: keep it. */
  createWebhookEndpoint(
    body: CreateWebhookEndpointRequest,
    options?: CallOptions,
  ): Promise<WebhookEndpointWithSecret>;
  listWebhookEndpoints(
    query?: { limit?: number; cursor?: string },
    options?: CallOptions,
  ): Promise<WebhookEndpointPage>;
  getWebhookEndpoint(id: string, options?: CallOptions): Promise<WebhookEndpoint>;
  updateWebhookEndpoint(
    id: string,
    patch: UpdateWebhookEndpointRequest,
    options?: CallOptions,
  ): Promise<WebhookEndpoint>;
  deleteWebhookEndpoint(id: string, options?: CallOptions): Promise<void>;
  /** A new secret, shown only here; the previous one keeps signing for the service's overlap. */
  rotateWebhookEndpointSecret(id: string, options?: CallOptions): Promise<WebhookEndpointWithSecret>;
  listWebhookDeliveries(
    endpointId: string,
    query?: ListWebhookDeliveriesQuery,
    options?: CallOptions,
  ): Promise<WebhookDeliveryPage>;
  redeliverWebhookDelivery(id: string, options?: CallOptions): Promise<WebhookDelivery>;
}

export function createPayoutsClient(options: PayoutsClientOptions): PayoutsClient {
  const client = createClient<paths>({
    baseUrl: options.baseUrl,
    fetch: options.fetch,
    headers: {
      Authorization: `Bearer ${options.apiKey}`,
      Accept: 'application/json, application/problem+json',
    },
  });

  return {
    async createPayout(body, { idempotencyKey, ...call } = {}) {
      const result = await client.POST('/api/payouts', {
        body,
        params: { header: { 'Idempotency-Key': idempotencyKey, ...requestIdHeader(call) } },
        signal: call.signal,
      });
      return unwrap(result);
    },

    async getPayout(id, call = {}) {
      const result = await client.GET('/api/payouts/{id}', {
        params: { path: { id }, header: requestIdHeader(call) },
        signal: call.signal,
      });
      // Without If-None-Match the API never answers 304, so a success always carries the payout.
      return unwrap(result);
    },

    async listPayouts(query = {}, call = {}) {
      const result = await client.GET('/api/payouts', {
        params: { query, header: requestIdHeader(call) },
        signal: call.signal,
      });
      return unwrap(result);
    },

    async updatePayout(id, patch, { ifMatch, ...call } = {}) {
      const result = await client.PATCH('/api/payouts/{id}', {
        body: patch,
        params: { path: { id }, header: { 'If-Match': etag(ifMatch), ...requestIdHeader(call) } },
        signal: call.signal,
      });
      return unwrap(result);
    },

    async retryPayout(id, reason, { ifMatch, ...call } = {}) {
      const result = await client.POST('/api/payouts/{id}/retry', {
        body: { reason },
        params: { path: { id }, header: { 'If-Match': etag(ifMatch), ...requestIdHeader(call) } },
        signal: call.signal,
      });
      return unwrap(result);
    },

    async cancelPayout(id, { ifMatch, ...call } = {}) {
      const result = await client.DELETE('/api/payouts/{id}', {
        params: { path: { id }, header: { 'If-Match': etag(ifMatch), ...requestIdHeader(call) } },
        signal: call.signal,
      });
      unwrap(result);
    },

    async listPayoutEvents(id, query = {}, call = {}) {
      const result = await client.GET('/api/payouts/{id}/events', {
        params: { path: { id }, query, header: requestIdHeader(call) },
        signal: call.signal,
      });
      return unwrap(result);
    },

    async createWebhookEndpoint(body, call = {}) {
      const result = await client.POST('/api/webhook-endpoints', {
        body,
        params: { header: requestIdHeader(call) },
        signal: call.signal,
      });
      return unwrap(result);
    },

    async listWebhookEndpoints(query = {}, call = {}) {
      const result = await client.GET('/api/webhook-endpoints', {
        params: { query, header: requestIdHeader(call) },
        signal: call.signal,
      });
      return unwrap(result);
    },

    async getWebhookEndpoint(id, call = {}) {
      const result = await client.GET('/api/webhook-endpoints/{id}', {
        params: { path: { id }, header: requestIdHeader(call) },
        signal: call.signal,
      });
      return unwrap(result);
    },

    async updateWebhookEndpoint(id, patch, call = {}) {
      const result = await client.PATCH('/api/webhook-endpoints/{id}', {
        body: patch,
        params: { path: { id }, header: requestIdHeader(call) },
        signal: call.signal,
      });
      return unwrap(result);
    },

    async deleteWebhookEndpoint(id, call = {}) {
      const result = await client.DELETE('/api/webhook-endpoints/{id}', {
        params: { path: { id }, header: requestIdHeader(call) },
        signal: call.signal,
      });
      unwrap(result);
    },

    async rotateWebhookEndpointSecret(id, call = {}) {
      const result = await client.POST('/api/webhook-endpoints/{id}/rotate-secret', {
        params: { path: { id }, header: requestIdHeader(call) },
        signal: call.signal,
      });
      return unwrap(result);
    },

    async listWebhookDeliveries(endpointId, query = {}, call = {}) {
      const result = await client.GET('/api/webhook-endpoints/{id}/deliveries', {
        params: { path: { id: endpointId }, query, header: requestIdHeader(call) },
        signal: call.signal,
      });
      return unwrap(result);
    },

    async redeliverWebhookDelivery(id, call = {}) {
      const result = await client.POST('/api/webhook-deliveries/{id}/redeliver', {
        params: { path: { id }, header: requestIdHeader(call) },
        signal: call.signal,
      });
      return unwrap(result);
    },
  };
}

function requestIdHeader(call: CallOptions): { 'X-Request-Id'?: string } {
  return call.requestId === undefined ? {} : { 'X-Request-Id': call.requestId };
}

function etag(ifMatch: number | string | undefined): string | undefined {
  return typeof ifMatch === 'number' ? `"${ifMatch}"` : ifMatch;
}

/** openapi-fetch's `{ data } | { error }` → the data, or a thrown PayoutsApiError. */
function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  const { response } = result;
  if (response.ok) return result.data as T;
  const requestId = response.headers.get('x-request-id') ?? undefined;
  throw new PayoutsApiError(response.status, asProblem(result.error, response), requestId);
}

/**
 * The API answers every error with a problem document. Something in between (a proxy's 502 page) may not: that
 * becomes a problem of code `unexpected_response`, so callers always have one shape to read.
 */
function asProblem(body: unknown, response: Response): Problem {
  if (
    body !== null &&
    typeof body === 'object' &&
    typeof (body as Problem).code === 'string' &&
    typeof (body as Problem).status === 'number'
  ) {
    return body as Problem;
  }
  return {
    type: 'about:blank',
    title: response.statusText || `HTTP ${response.status}`,
    status: response.status,
    detail: typeof body === 'string' ? body.slice(0, 200) : 'The response is not a problem document.',
    code: 'unexpected_response',
  };
}

export type { WebhookEvent, WebhookEventType } from './webhooks.js';
export { WebhookVerificationError, verifyWebhook } from './webhooks.js';
