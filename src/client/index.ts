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

/**
 * openapi.yaml discriminates recipients by `type` without a `mapping` (ajv, which validates requests in the
 * app, refuses `mapping`). By the OpenAPI rules a discriminator without a mapping names the schema, so
 * openapi-typescript types `recipient.type` as `'IbanRecipientInput'` and `'MaskedIbanRecipient'`, while the
 * value on the wire is `'iban'` (the property's own enum). These types say `'iban'`; they can become plain
 * aliases of the generated ones once the contract carries a mapping.
 */
type TypedAs<T, Type extends string> = Omit<T, 'type'> & { type: Type };
export type RecipientInput = TypedAs<Schemas['IbanRecipientInput'], 'iban'>;
export type Recipient = TypedAs<Schemas['MaskedIbanRecipient'], 'iban'>;
export type CreatePayoutRequest = Omit<Schemas['CreatePayoutRequest'], 'recipient'> & {
  recipient: RecipientInput;
};
export type Payout = Omit<Schemas['Payout'], 'recipient'> & { recipient: Recipient };
export type PayoutPage = Omit<Schemas['PayoutPage'], 'data'> & { data: Payout[] };
export type PayoutEvent = Schemas['PayoutEvent'];
export type PayoutStatus = Schemas['PayoutStatus'];
export type UpdatePayoutRequest = Schemas['UpdatePayoutRequest'];
export type Problem = Schemas['Problem'];
export type ListPayoutsQuery = NonNullable<paths['/api/payouts']['get']['parameters']['query']>;
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
  listPayoutEvents(id: string, options?: CallOptions): Promise<PayoutEvent[]>;
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
        body: body as unknown as Schemas['CreatePayoutRequest'],
        params: { header: { 'Idempotency-Key': idempotencyKey, ...requestIdHeader(call) } },
        signal: call.signal,
      });
      return payoutOf(unwrap(result));
    },

    async getPayout(id, call = {}) {
      const result = await client.GET('/api/payouts/{id}', {
        params: { path: { id }, header: requestIdHeader(call) },
        signal: call.signal,
      });
      // Without If-None-Match the API never answers 304, so a success always carries the payout.
      return payoutOf(unwrap(result));
    },

    async listPayouts(query = {}, call = {}) {
      const result = await client.GET('/api/payouts', {
        params: { query, header: requestIdHeader(call) },
        signal: call.signal,
      });
      const page = unwrap(result);
      return { ...page, data: page.data.map(payoutOf) };
    },

    async updatePayout(id, patch, { ifMatch, ...call } = {}) {
      const result = await client.PATCH('/api/payouts/{id}', {
        body: patch,
        params: { path: { id }, header: { 'If-Match': etag(ifMatch), ...requestIdHeader(call) } },
        signal: call.signal,
      });
      return payoutOf(unwrap(result));
    },

    async retryPayout(id, reason, { ifMatch, ...call } = {}) {
      const result = await client.POST('/api/payouts/{id}/retry', {
        body: { reason },
        params: { path: { id }, header: { 'If-Match': etag(ifMatch), ...requestIdHeader(call) } },
        signal: call.signal,
      });
      return payoutOf(unwrap(result));
    },

    async cancelPayout(id, { ifMatch, ...call } = {}) {
      const result = await client.DELETE('/api/payouts/{id}', {
        params: { path: { id }, header: { 'If-Match': etag(ifMatch), ...requestIdHeader(call) } },
        signal: call.signal,
      });
      unwrap(result);
    },

    async listPayoutEvents(id, call = {}) {
      const result = await client.GET('/api/payouts/{id}/events', {
        params: { path: { id }, header: requestIdHeader(call) },
        signal: call.signal,
      });
      return unwrap(result).data;
    },
  };
}

/** A payout as generated → as on the wire (`recipient.type` is `'iban'`; see `TypedAs`). */
function payoutOf(payout: Schemas['Payout']): Payout {
  return payout as unknown as Payout;
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
