/**
 * The operations of openapi.yaml, one handler per operationId. Each turns the validated request into one
 * service call and the result into the response; the rules live in the service. openapi-backend has already
 * routed, authenticated and validated the request against the contract when a handler runs.
 */
import type { ServerResponse } from 'node:http';
import type { Request, Response } from 'express';
import type { Context } from 'openapi-backend';
import type { Payout } from '../domain/payout.js';
import type { CreatePayoutInput, PayoutChangeRequest, PayoutService } from '../domain/payout-service.js';
import type { Principal } from '../domain/principal.js';
import type { CreateEndpointInput, UpdateEndpointInput, WebhookService } from '../domain/webhook-service.js';
import type { PayoutStage, PayoutStatus } from '../machines/payout-lifecycle.js';
import { machineDefinition } from '../machines/definition.js';
import type { DocsPages } from './docs.js';
import { ContractViolated } from './problem.js';
import { requestState } from './request-context.js';
import type { CursorKind } from './resources.js';
import {
  decodeCursor,
  encodeCursor,
  toPayoutEventResource,
  toPayoutResource,
  toWebhookDeliveryResource,
  toWebhookEndpointResource,
} from './resources.js';
import type { ApiSpec } from './spec.js';

/** What the handlers need: the payout service and the webhook endpoints' service. */
export interface HandlerDeps {
  service: PayoutService;
  webhooks: WebhookService;
}

export type OperationHandler = (c: Context, req: Request, res: Response) => Promise<void> | void;

export function operationHandlers(
  deps: HandlerDeps,
  spec: ApiSpec,
  docs: DocsPages,
): Record<string, OperationHandler> {
  const { service, webhooks } = deps;
  return {
    async createPayout(c, _req, res) {
      const reply = await createPayoutReply(service, principalOf(c), {
        body: c.request.requestBody as CreatePayoutInput,
        idempotencyKey: header(c, 'idempotency-key'),
        requestId: requestIdOf(res),
      });
      sendReply(res, reply);
    },

    async listPayouts(c, _req, res) {
      const query = c.request.query as Record<string, unknown>;
      sendReply(res, await listPayoutsReply(service, principalOf(c), query));
    },

    async getPayout(c, _req, res) {
      const reply = await getPayoutReply(service, principalOf(c), pathId(c), header(c, 'if-none-match'));
      sendReply(res, reply);
    },

    async updatePayout(c, _req, res) {
      const principal = principalOf(c);
      const body = c.request.requestBody as PayoutChangeRequest & { reason?: string };
      const result = await service.updatePayout(
        principal,
        pathId(c),
        { status: body.status, description: body.description },
        { requestId: requestIdOf(res), expectedVersion: ifMatch(c), reason: body.reason },
      );
      sendPayout(res, result.payout, principal, result.accepted ? 202 : 200);
    },

    async retryPayout(c, _req, res) {
      const principal = principalOf(c);
      const body = (c.request.requestBody ?? {}) as { reason?: string };
      const result = await service.retryPayout(principal, pathId(c), {
        requestId: requestIdOf(res),
        expectedVersion: ifMatch(c),
        reason: body.reason,
      });
      sendPayout(res, result.payout, principal, 202);
    },

    async deletePayout(c, _req, res) {
      const principal = principalOf(c);
      await service.deletePayout(principal, pathId(c), {
        requestId: requestIdOf(res),
        expectedVersion: ifMatch(c),
      });
      res.status(204).end();
    },

    async listPayoutEvents(c, _req, res) {
      const query = c.request.query as Record<string, unknown>;
      const cursor = optionalString(query.cursor);
      const after = cursor === undefined ? undefined : decodeCursor(cursor, 'history');
      if (after === null) {
        throw new ContractViolated([
          { pointer: '/query/cursor', message: 'is not a cursor this API issued' },
        ]);
      }
      const page = await service.listEvents(principalOf(c), pathId(c), {
        limit: typeof query.limit === 'number' ? query.limit : 20,
        after,
      });
      res.json({
        data: page.items.map(toPayoutEventResource),
        next_cursor: page.next === null ? null : encodeCursor(page.next, 'history'),
      });
    },

    async createWebhookEndpoint(c, _req, res) {
      const input = c.request.requestBody as CreateEndpointInput;
      const { endpoint, secret } = await webhooks.createEndpoint(principalOf(c), input);
      res
        .status(201)
        .location(`/api/webhook-endpoints/${endpoint.id}`)
        .json(toWebhookEndpointResource(endpoint, secret));
    },

    async listWebhookEndpoints(c, _req, res) {
      const query = c.request.query as Record<string, unknown>;
      const page = await webhooks.listEndpoints(principalOf(c), {
        limit: typeof query.limit === 'number' ? query.limit : 20,
        after: cursorOf(query, 'endpoints'),
      });
      res.json({
        data: page.items.map((endpoint) => toWebhookEndpointResource(endpoint)),
        next_cursor: page.next === null ? null : encodeCursor(page.next, 'endpoints'),
      });
    },

    async getWebhookEndpoint(c, _req, res) {
      res.json(toWebhookEndpointResource(await webhooks.getEndpoint(principalOf(c), pathId(c))));
    },

    async updateWebhookEndpoint(c, _req, res) {
      const input = c.request.requestBody as UpdateEndpointInput;
      res.json(toWebhookEndpointResource(await webhooks.updateEndpoint(principalOf(c), pathId(c), input)));
    },

    async deleteWebhookEndpoint(c, _req, res) {
      await webhooks.deleteEndpoint(principalOf(c), pathId(c));
      res.status(204).end();
    },

    async rotateWebhookEndpointSecret(c, _req, res) {
      const { endpoint, secret } = await webhooks.rotateSecret(principalOf(c), pathId(c));
      res.json(toWebhookEndpointResource(endpoint, secret));
    },

    async listWebhookDeliveries(c, _req, res) {
      const query = c.request.query as Record<string, unknown>;
      const page = await webhooks.listDeliveries(principalOf(c), pathId(c), {
        limit: typeof query.limit === 'number' ? query.limit : 20,
        after: cursorOf(query, 'deliveries'),
        payoutId: optionalString(query.payout_id),
      });
      res.json({
        data: page.items.map(toWebhookDeliveryResource),
        next_cursor: page.next === null ? null : encodeCursor(page.next, 'deliveries'),
      });
    },

    async redeliverWebhookDelivery(c, _req, res) {
      res.status(202).json(toWebhookDeliveryResource(await webhooks.redeliver(principalOf(c), pathId(c))));
    },

    getMachine(_c, _req, res) {
      res.json(machineDefinition());
    },

    getOpenApiYaml(_c, _req, res) {
      res.type('application/yaml').send(spec.yaml);
    },

    getOpenApiJson(_c, _req, res) {
      res.type('application/json').send(spec.json);
    },

    getSwaggerUi(_c, req, res) {
      docs.swaggerUi(req, res);
    },

    getRedoc(_c, req, res) {
      docs.redoc(req, res);
    },

    getHealth(_c, _req, res) {
      res.json({ status: 'ok' });
    },
  };
}

/** The principal the `bearerAuth` security handler resolved; openapi-backend runs handlers only when it did. */
/** An answer as data: written by `sendReply`, the same way on every path that serves the operation. */
export interface Reply {
  status: number;
  headers: Record<string, string>;
  /** JSON; none for a 304. */
  body?: unknown;
  /** The body already serialized, instead of `body`. */
  json?: string;
}

/** Writes a reply: JSON (`application/json; charset=utf-8`) with its length, or only the headers. */
export function sendReply(res: ServerResponse, reply: Reply): void {
  if (reply.body === undefined && reply.json === undefined) {
    res.writeHead(reply.status, reply.headers).end();
    return;
  }
  const json = reply.json ?? JSON.stringify(reply.body);
  res
    .writeHead(reply.status, {
      ...reply.headers,
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(json),
    })
    .end(json);
}

/** `POST /api/payouts`, its body and headers checked against the contract. */
export async function createPayoutReply(
  service: PayoutService,
  principal: Principal,
  request: { body: CreatePayoutInput; idempotencyKey: string | undefined; requestId: string },
): Promise<Reply> {
  const result = await service.createPayout(principal, request.body, {
    requestId: request.requestId,
    idempotencyKey: request.idempotencyKey,
    // The answer is stored with the payout, so that a replay answers exactly the same.
    answer: (payout) => ({
      status: 201,
      body: toPayoutResource(payout, principal) as unknown as Record<string, unknown>,
    }),
  });
  const body = result.answer.body as unknown as { id: string; version: number };
  const headers: Record<string, string> = {
    ETag: etag(body.version),
    Location: `/api/payouts/${body.id}`,
  };
  if (result.replayed) headers['Idempotent-Replayed'] = 'true';
  return { status: result.answer.status, headers, body };
}

/** `GET /api/payouts/{id}`, answering 304 to a matching `If-None-Match`. */
export async function getPayoutReply(
  service: PayoutService,
  principal: Principal,
  id: string,
  ifNoneMatch: string | undefined,
): Promise<Reply> {
  const payout = await service.getPayoutResource(principal, id);
  const headers = { ETag: etag(payout.version) };
  if (noneMatch(ifNoneMatch, payout.version)) return { status: 304, headers };
  return { status: 200, headers, json: payout.resource };
}

/** `GET /api/payouts`, its query checked (and `limit` made a number) against the contract. */
export async function listPayoutsReply(
  service: PayoutService,
  principal: Principal,
  query: Record<string, unknown>,
): Promise<Reply> {
  const cursor = optionalString(query.cursor);
  const after = cursor === undefined ? undefined : decodeCursor(cursor);
  if (after === null) {
    throw new ContractViolated([{ pointer: '/query/cursor', message: 'is not a cursor this API issued' }]);
  }
  const page = await service.listPayoutResources(principal, {
    limit: typeof query.limit === 'number' ? query.limit : 20,
    after,
    status: optionalString(query.status) as PayoutStatus | undefined,
    stage: optionalString(query.stage) as PayoutStage | undefined,
    currency: optionalString(query.currency),
    createdGte: optionalDate(query.created_gte, '/query/created_gte'),
    createdLt: optionalDate(query.created_lt, '/query/created_lt'),
  });
  // The resources come as JSON text (see `PayoutStore.listResources`): the page is written around them.
  const next = page.next === null ? null : encodeCursor(page.next);
  return {
    status: 200,
    headers: {},
    json: `{"data":[${page.resources.join(',')}],"next_cursor":${JSON.stringify(next)}}`,
  };
}

export function principalOf(c: Context): Principal {
  return c.security.bearerAuth as Principal;
}

function sendPayout(res: Response, payout: Payout, principal: Principal, status = 200): void {
  res.setHeader('ETag', etag(payout.version));
  res.status(status).json(toPayoutResource(payout, principal));
}

export function etag(version: number): string {
  return `"${version}"`;
}

/** `If-Match: "<version>"` as the version the caller expects; `*` (or no header) expects nothing. */
function ifMatch(c: Context): number | undefined {
  const value = header(c, 'if-match');
  const match = value === undefined ? null : /^"(\d{1,10})"$/.exec(value);
  return match ? Number(match[1]) : undefined;
}

/**
 * True when `If-None-Match` names the current version (weak comparison, as RFC 9110 asks for this header).
 * Decided here rather than by Express, whose freshness check gives up on any `Cache-Control: no-cache`,
 * which fetch adds to every conditional request.
 */
function noneMatch(value: string | undefined, version: number): boolean {
  if (value === undefined) return false;
  if (value.trim() === '*') return true;
  return value.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag(version));
}

function requestIdOf(res: Response): string {
  return requestState(res).requestId;
}

function pathId(c: Context): string {
  return String((c.request.params as Record<string, unknown>).id);
}

function header(c: Context, name: string): string | undefined {
  const value = (c.request.headers as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : undefined;
}

/** The `cursor` query parameter as the position it names; a cursor this API did not issue for the list is 400. */
function cursorOf(query: Record<string, unknown>, kind: CursorKind): string | undefined {
  const cursor = optionalString(query.cursor);
  if (cursor === undefined) return undefined;
  const after = decodeCursor(cursor, kind);
  if (after === null) {
    throw new ContractViolated([{ pointer: '/query/cursor', message: 'is not a cursor this API issued' }]);
  }
  return after;
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/**
 * The contract admits only RFC 3339 instants from year 0001 to 9999 with at most milliseconds, which a JS Date
 * holds exactly; the check here is the last guard before the value reaches the database.
 */
function optionalDate(value: unknown, pointer: string): Date | undefined {
  if (typeof value !== 'string') return undefined;
  const date = new Date(value);
  if (Number.isNaN(date.getTime()))
    throw new ContractViolated([{ pointer, message: 'must be a valid date-time' }]);
  return date;
}
